"""Loading files in worker threads or processes: the same arrays and errors, in order, and
nothing lost when a worker process dies."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from edge_infer import files as image_io
from edge_infer import loading
from edge_infer.classifier import FILES_PER_PROCESS, Classifier
from edge_infer.loading import LoadPool, load_slice
from tests.scenes import garment_on_floor, packshot

needs_fork = pytest.mark.skipif(not loading.can_fork(), reason="worker processes are forked (Linux only)")


@pytest.fixture()
def mixed_folder(tmp_path):
    """Photos, drawings, a truncated JPEG and a text file named .png, shuffled together."""
    rng = np.random.default_rng(0)
    for i in range(22):  # with the two broken files, enough to fork 2 workers
        garment_on_floor(seed=i).save(tmp_path / f"{i:02d}_floor.jpg", quality=85)
        packshot(garment=tuple(int(v) for v in rng.integers(0, 120, 3))).save(tmp_path / f"{i:02d}_shot.png")
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L").save(tmp_path / f"{i:02d}_mnist.png")
    whole = (tmp_path / "00_floor.jpg").read_bytes()
    (tmp_path / "05_cut.jpg").write_bytes(whole[: len(whole) // 3])
    (tmp_path / "07_text.png").write_text("not an image")
    return tmp_path


def outcomes(loaded):
    return [(item.error, None if item.array is None else item.array.tobytes()) for item in loaded]


def items_of(folder):
    collected = image_io.collect([str(folder)]).files
    return collected + [image_io.InputFile(folder / "gone.png", "gone.png", "no such file")]


@needs_fork
def test_processes_load_what_threads_load_in_the_same_order(mixed_folder):
    items = items_of(mixed_folder)
    with LoadPool(2, "robust", processes=True) as pool:
        assert pool.uses_processes
        by_processes = pool.result(pool.submit(items))
    with LoadPool(2, "robust") as pool:
        assert not pool.uses_processes
        by_threads = pool.result(pool.submit(items))
    expected = outcomes(load_slice(items, "robust"))
    assert outcomes(by_processes) == expected == outcomes(by_threads)
    errors = [error for error, _ in expected if error]
    assert len(errors) == 3 and all(errors)


_real_load_slice = load_slice
_PARENT = os.getpid()


def _dies_in_a_child(items, method):
    if os.getpid() != _PARENT:
        os._exit(1)  # as if killed (out of memory, say)
    return _real_load_slice(items, method)


@needs_fork
def test_a_dead_worker_process_loses_no_file(mixed_folder, monkeypatch):
    items = items_of(mixed_folder)
    # the forked children see the patched function; the parent's fallback runs the real one
    monkeypatch.setattr(loading, "load_slice", _dies_in_a_child)
    with LoadPool(2, "robust", processes=True) as pool:
        assert pool.uses_processes
        loaded = pool.result(pool.submit(items))
        assert not pool.uses_processes
        again = pool.result(pool.submit(items))
    expected = outcomes(_real_load_slice(items, "robust"))
    assert outcomes(loaded) == expected == outcomes(again)


_real_ready = loading._ready
_HANG_FLAG = None  # a path: the one worker that creates it hangs


def _one_worker_hangs(timeout):
    try:
        os.close(os.open(_HANG_FLAG, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return _real_ready(timeout)
    time.sleep(60)


@needs_fork
def test_a_worker_that_does_not_start_in_time_leaves_the_work_to_threads(mixed_folder, monkeypatch, tmp_path):
    monkeypatch.setattr(loading, "_ready", _one_worker_hangs)
    monkeypatch.setitem(globals(), "_HANG_FLAG", str(tmp_path / "hang"))
    items = items_of(mixed_folder)
    tick = time.monotonic()
    with LoadPool(2, "robust", processes=True, start_timeout=0.5) as pool:
        assert not pool.uses_processes
        assert time.monotonic() - tick < 5
        loaded = pool.result(pool.submit(items))
    assert outcomes(loaded) == outcomes(load_slice(items, "robust"))
    _until_no_other_thread()
    assert multiprocessing.active_children() == []  # the hanging worker was killed, not left behind


def _until_no_other_thread(seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_one_worker_never_forks():
    with LoadPool(1, "robust", processes=True) as pool:
        assert not pool.uses_processes


@needs_fork
def test_classify_answers_the_same_with_processes_and_with_one_thread(mixed_folder):
    _until_no_other_thread()  # forks_for needs a program running no other Python thread
    count = len(image_io.collect([str(mixed_folder)]).files)
    assert count >= 2 * FILES_PER_PROCESS
    one_thread = Classifier(workers=1, batch_size=16).classify(mixed_folder)
    two_processes = Classifier(workers=2, batch_size=16)
    assert two_processes.forks_for(count) and not Classifier(workers=1).forks_for(count)
    two_processes = two_processes.classify(mixed_folder)
    assert [r.to_dict() for r in two_processes] == [r.to_dict() for r in one_thread]
    assert sum(1 for r in one_thread if r.error) == 2


def test_a_program_running_other_threads_is_never_forked(mixed_folder):
    release = threading.Event()
    host = threading.Thread(target=release.wait)
    host.start()
    try:
        assert not loading.can_fork()
        with LoadPool(2, "robust", processes=True) as pool:
            assert not pool.uses_processes
            loaded = pool.result(pool.submit(items_of(mixed_folder)))
    finally:
        release.set()
        host.join()
    assert outcomes(loaded) == outcomes(load_slice(items_of(mixed_folder), "robust"))
