"""Decode and preprocess image files, in parallel: threads for small jobs, processes for big ones.

Decoding runs in C with the GIL released, but the rest of a file's work (Python per file, and
the segmenter's NumPy operations on small arrays) holds it, so two worker threads do not keep
two cores busy. Two forked processes load 256 phone-style JPEGs in 0.76 s instead of 1.18 s
and 256 28x28 PNGs in 0.038 s instead of 0.055 s (2-core Xeon, `benchmarks/classify_speed.py`,
"threads_or_processes"). Forking costs about 0.01-0.03 s, which pays from about 32 files per
worker (the classifier's FILES_PER_PROCESS); smaller jobs, such as a one-file `classify`, stay
on threads.

The processes are forked (on Linux, from a program with no other Python thread running; the
threads do it all otherwise): a fork server or spawn would re-import the caller's main module,
which runs any unguarded script or `python -m edge_infer` a second time, and takes 0.2 s
instead of 0.03 s. The parent already runs idle native threads (OpenBLAS's, onnxruntime's);
the children never touch onnxruntime, and they only get work once every one has answered a
first task within a deadline (threads otherwise).
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import files as image_io
from .preprocess import preprocess


@dataclass
class Loaded:
    """One file after decode and preprocessing: an array, or the reason there is none."""

    array: np.ndarray | None
    error: str = ""


def load_and_preprocess(item: image_io.InputFile, method: str) -> Loaded:
    if item.error:
        return Loaded(None, item.error)
    return _preprocessed(lambda: image_io.open_image(item.path), method)


def load_and_preprocess_bytes(data: bytes, method: str) -> Loaded:
    """`load_and_preprocess` for a file's contents already read (from object storage, say)."""
    return _preprocessed(lambda: image_io.open_image_bytes(data), method)


def _preprocessed(open_image: Callable, method: str) -> Loaded:
    try:
        with open_image() as image:
            return Loaded(preprocess(image, method))
    except image_io.ImageError as exc:
        return Loaded(None, str(exc))
    except (OSError, ValueError, MemoryError) as exc:  # a decoder failing late, mid-preprocess
        return Loaded(None, f"cannot process image ({type(exc).__name__}: {exc})")


def load_slice(items: list[image_io.InputFile], method: str) -> list[Loaded]:
    return [load_and_preprocess(item, method) for item in items]


def can_fork() -> bool:
    """Forking is safe here: Linux, and no other Python thread (a host application's) that
    could hold a lock the child would then wait for forever."""
    return (sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()
            and threading.active_count() == 1)


_start_barrier = None  # set in each worker process: every worker must reach it once


def _worker_started(barrier) -> None:
    global _start_barrier
    _start_barrier = barrier
    # Ctrl-C reaches the whole process group: the parent reports it once and stops the pool,
    # so the workers ignore it rather than each printing a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ready(timeout: float) -> None:
    """A first task that returns only when every worker runs one (a worker runs one task at a
    time, so answering proves that they all started)."""
    _start_barrier.wait(timeout)


class LoadPool:
    """Load slices of files on `workers` threads, or, asked for `processes`, on as many forked
    processes.

    `submit` returns one future per slice; `result` waits for them and, should a worker
    process die (killed, out of memory), loads the lost slices again on the threads and stops
    using processes, so no file is lost. Processes that fail to start, or do not all answer a
    first task within `start_timeout` seconds, are killed and the threads do the work."""

    def __init__(self, workers: int, method: str, processes: bool = False, start_timeout: float = 2.0):
        self.workers = max(1, workers)
        self.method = method
        self.threads = ThreadPoolExecutor(self.workers)
        self.processes: ProcessPoolExecutor | None = None
        if processes and self.workers > 1 and can_fork():
            self._start_processes(start_timeout)

    def _start_processes(self, timeout: float) -> None:
        context = multiprocessing.get_context("fork")
        try:
            self.processes = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_started,
                                                 initargs=(context.Barrier(self.workers),))
            started = [self.processes.submit(_ready, timeout) for _ in range(self.workers)]
        except (OSError, BrokenProcessPool):  # no fork (process limit, memory), no semaphores
            self._give_up_processes()
            return
        done, late = wait(started, timeout=timeout + 1.0)
        if late or any(future.exception() is not None for future in done):
            self._give_up_processes()

    def __enter__(self) -> LoadPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.threads.shutdown(cancel_futures=True)
        if self.processes is not None:
            self.processes.shutdown(cancel_futures=True)

    @property
    def uses_processes(self) -> bool:
        return self.processes is not None

    def submit(self, items: list[image_io.InputFile]) -> list[tuple[list[image_io.InputFile], Future]]:
        """Split `items` into one slice per worker (every worker-th file, so slow files
        spread out) and start loading each."""
        slices = [items[k :: self.workers] for k in range(min(self.workers, len(items)))]
        return [(part, self._submit(part)) for part in slices]

    def _submit(self, part: list[image_io.InputFile]) -> Future:
        if self.processes is not None:
            try:
                return self.processes.submit(load_slice, part, self.method)
            except BrokenProcessPool:
                self._give_up_processes()
        return self.threads.submit(load_slice, part, self.method)

    def result(self, pending: list[tuple[list[image_io.InputFile], Future]]) -> list[Loaded]:
        """The loaded files of one `submit`, back in the order of the items."""
        futures = [future for _, future in pending]
        for index, (part, future) in enumerate(pending):
            try:
                future.result()
            except (BrokenProcessPool, CancelledError):  # a worker process died: load its slice again
                self._give_up_processes()
                futures[index] = self.threads.submit(load_slice, part, self.method)
        loaded = [future.result() for future in futures]
        count = sum(len(part) for part in loaded)
        return [loaded[i % len(loaded)][i // len(loaded)] for i in range(count)]

    def _give_up_processes(self) -> None:
        if self.processes is not None:
            # a stuck worker would otherwise keep the program from exiting; the executor has no
            # public way to stop its workers before Python 3.14 (kill_workers)
            workers = getattr(self.processes, "_processes", None) or {}
            for process in list(workers.values()):
                process.kill()
            self.processes.shutdown(wait=False, cancel_futures=True)
            self.processes = None
