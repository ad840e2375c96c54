"""classify on a local Ray cluster: the same records as `Classifier.classify`, the CLI's formats
and exit codes, and a clean failure when Ray is not installed."""

from __future__ import annotations

import csv
import io
import json
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_infer import Classifier
from edge_infer.cli import main

from .conftest import synthetic_images
from .scenes import SCENES
from .test_classify_cli import gigantic_png

BROKEN = {"empty.png": "empty", "text.png": "not a recognised", "truncated.jpg": "truncated",
          "bomb.png": "megapixel"}


def add_good_images(folder, count: int = 12) -> None:
    """Fashion-MNIST-like 28x28 PNGs and a few photo-like scenes (JPEG), as classify meets them."""
    for i, image in enumerate(synthetic_images(np.arange(count) % 10)):
        Image.fromarray(image, "L").save(folder / f"item{i:02d}.png")
    for name, scene in list(SCENES.items())[:3]:
        scene().save(folder / f"{name}.jpg", quality=90)


def add_broken_files(folder) -> None:
    """The kinds of unusable input the classify tests use."""
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image either")
    buffer = io.BytesIO()
    SCENES["packshot_white"]().save(buffer, "JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[:400])
    (folder / "bomb.png").write_bytes(gigantic_png())


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Good images, the broken kinds, a non-image, a sub-folder, a directory and a symlink loop
    named like images."""
    folder = tmp_path_factory.mktemp("ray") / "photos"
    (folder / "sub").mkdir(parents=True)
    add_good_images(folder)
    add_good_images(folder / "sub", count=3)
    add_broken_files(folder)
    (folder / "notes.txt").write_text("not an image")
    (folder / "dir.png").mkdir()
    os.symlink("loop_b.png", folder / "loop_a.png")
    os.symlink("loop_a.png", folder / "loop_b.png")
    return folder


@pytest.fixture(scope="module")
def flat_photos(tmp_path_factory):
    """Good and broken files only: what an object-store prefix holds."""
    folder = tmp_path_factory.mktemp("ray") / "bucket"
    folder.mkdir()
    add_good_images(folder)
    add_broken_files(folder)
    return folder


def assert_same_records(ours: list[dict], theirs: list[dict]) -> None:
    """Field by field, in path order: labels and errors identical, probabilities within 1e-6."""
    ours, theirs = sorted(ours, key=lambda r: r["path"]), sorted(theirs, key=lambda r: r["path"])
    assert [r["path"] for r in ours] == [r["path"] for r in theirs]
    for mine, expected in zip(ours, theirs):
        assert mine.keys() == expected.keys()
        for key, value in expected.items():
            if key == "confidence" and value is not None:
                assert mine[key] == pytest.approx(value, abs=1e-6), mine["path"]
            elif key == "top_k":
                assert [label for label, _ in mine[key]] == [label for label, _ in value], mine["path"]
                assert [p for _, p in mine[key]] == pytest.approx([p for _, p in value], abs=1e-6)
            else:
                assert mine[key] == value, (mine["path"], key)


def on_cluster(source: str, recursive: bool = False, **options) -> list[dict]:
    from edge_infer import ray_data

    found = ray_data.find_images(source, recursive)
    records = ray_data.RayClassifier(**{"actors": 2, **options}).classify(ray_data.images_dataset(found))
    return [record.to_dict() for record in ray_data.iter_records(records)]


@pytest.mark.parametrize("recursive, actors, cpus_per_actor", [(False, 2, 1), (True, 1, 2)])
@pytest.mark.ray
@pytest.mark.slow
def test_records_equal_classify_field_by_field(ray_cluster, photos, recursive, actors, cpus_per_actor):
    expected = [r.to_dict() for r in Classifier(top_k=4).classify(str(photos), recursive=recursive)]
    ours = on_cluster(str(photos), recursive, top_k=4, actors=actors, cpus_per_actor=cpus_per_actor)
    assert_same_records(ours, expected)
    failed = {os.path.basename(r["path"]): r["error"] for r in ours if r["error"]}
    entered = {"dir.png"} if recursive else set()  # with -r, dir.png is a folder to descend into
    assert set(failed) == set(BROKEN) | {"dir.png", "loop_a.png", "loop_b.png"} - entered
    for name, reason in BROKEN.items():
        assert reason in failed[name]
    assert any(r["path"].startswith(str(photos / "sub")) for r in ours) == recursive


@pytest.mark.ray
@pytest.mark.slow
def test_a_uri_is_read_by_ray_and_gives_the_same_records(ray_cluster, flat_photos):
    expected = [r.to_dict() for r in Classifier().classify(str(flat_photos))]
    ours = on_cluster(f"file://{flat_photos}")
    assert all(r["path"].startswith("file:///") for r in ours)
    assert_same_records([{**r, "path": r["path"][len("file://"):]} for r in ours], expected)


@pytest.mark.ray
@pytest.mark.slow
def test_an_actor_uses_as_many_threads_as_it_has_cpus(ray_cluster):
    from edge_infer import ray_data

    classifier = ray_data.RayClassifier()
    model = ray_data.ModelFile(classifier.model_file.name, ray_cluster.put(classifier.model_file.content))

    @ray_cluster.remote(num_cpus=2)
    class Probe:
        def threads(self, model, options):
            worker = ray_data.ClassifyBatches(model, options)
            return worker.classifier.model.session.get_session_options().intra_op_num_threads

    assert ray_cluster.get(Probe.remote().threads.remote(model, classifier.options)) == 2


def run_cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def read_output(path) -> list[dict]:
    """The CLI's output file back: records shaped like Record.to_dict(), or the CSV's rows."""
    from edge_infer import ray_data

    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [ray_data.record_from_row(row).to_dict() for row in pq.read_table(path).to_pylist()]
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
@pytest.mark.ray
@pytest.mark.slow
def test_cli_writes_each_format_whole_with_classify_records_and_exits_one_for_broken_files(
        ray_cluster, photos, tmp_path, monkeypatch, suffix):
    monkeypatch.chdir(photos.parent)  # a relative SOURCE: the workers do not share our directory
    target = tmp_path / f"labels{suffix}"
    result = run_cli("classify-dataset", "photos", "-o", str(target), "--actors", "2")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    expected = Classifier().classify("photos")
    for record in expected.failed:  # each failure on stderr, as classify reports it
        assert f"edge-infer: {record.path}: {record.error}" in result.stderr
    assert f"{len(expected.records) - len(expected.failed)} classified, {len(expected.failed)} failed" in result.stdout
    written = read_output(target)
    if suffix == ".csv":
        from edge_infer import formats

        rows = list(csv.DictReader(io.StringIO(formats.to_csv([r.to_dict() for r in expected]))))
        assert sorted(written, key=lambda r: r["path"]) == sorted(rows, key=lambda r: r["path"])
    else:
        assert_same_records(written, [r.to_dict() for r in expected])
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left


@pytest.mark.ray
@pytest.mark.slow
def test_cli_all_good_exits_zero_and_reads_a_list_file(ray_cluster, flat_photos, tmp_path):
    good = sorted(str(p) for p in flat_photos.iterdir() if p.name not in BROKEN)
    listing = tmp_path / "paths.txt"
    listing.write_text("# photos to classify\n" + "\n".join(good) + "\n\n")
    target = tmp_path / "labels.jsonl"
    result = run_cli("classify-dataset", str(listing), "-o", str(target), "-q")
    assert result.exit_code == 0 and result.stderr == ""
    assert sorted(r["path"] for r in read_output(target)) == good
    assert f"{len(good)} classified, 0 failed" in result.stdout


@pytest.mark.ray
@pytest.mark.parametrize("args, message", [
    (["classify-dataset", "missing/", "-o", "out.csv"], "missing/: no such file or directory"),
    (["classify-dataset", "nothing*.png", "-o", "out.csv"], "no file matches"),
    (["classify-dataset", ".", "-o", "out.json"], "name the output .parquet, .csv or .jsonl"),
    (["classify-dataset", ".", "-o", "out.csv", "--model", "nope"], "unknown model"),
    (["classify-dataset", ".", "-o", "out.csv", "--actors", "0"], "Invalid value"),
])
def test_usage_errors_exit_two_before_any_cluster(args, message, tmp_path, monkeypatch):
    pytest.importorskip("ray.data")
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.csv").exists()


@pytest.mark.ray
def test_a_folder_without_images_exits_two(tmp_path):
    pytest.importorskip("ray.data")
    (tmp_path / "notes.txt").write_text("x")
    result = run_cli("classify-dataset", str(tmp_path), "-o", str(tmp_path / "out.csv"))
    assert result.exit_code == 2 and "no images found" in result.stderr


@pytest.mark.ray
def test_ctrl_c_exits_130_and_leaves_no_output(ray_cluster, flat_photos, tmp_path, monkeypatch, capsys):
    from edge_infer import cli, ray_data

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    target = tmp_path / "labels.parquet"
    monkeypatch.setattr(ray_data, "write_records", interrupted)
    monkeypatch.setattr(sys, "argv", ["edge-infer", "classify-dataset", str(flat_photos), "-o", str(target), "-q"])
    with pytest.raises(SystemExit) as exit_info:
        cli.run()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "edge-infer: interrupted"
    assert list(tmp_path.iterdir()) == []


def test_without_ray_the_command_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    Image.new("L", (28, 28), 0).save(tmp_path / "a.png")
    result = run_cli("classify-dataset", str(tmp_path), "-o", str(tmp_path / "out.csv"))
    assert result.exit_code == 2
    assert result.stderr == "edge-infer: error: Ray Data is not installed; pip install 'edge-infer[ray]'\n"
    assert not (tmp_path / "out.csv").exists()


def test_a_list_file_names_the_images_as_classify_would(tmp_path):
    from edge_infer import files, ray_data

    Image.new("L", (28, 28), 0).save(tmp_path / "a.png")
    listing = tmp_path / "paths.txt"
    listing.write_text(f"{tmp_path / 'a.png'}\n  {tmp_path / 'missing.png'}  \n# a comment\n\n{tmp_path}\n")
    found = ray_data.find_images(str(listing))
    assert found.files == files.collect([str(tmp_path / "a.png"), str(tmp_path / "missing.png"),
                                         str(tmp_path)]).files
    assert [item.error for item in found.files] == ["", "no such file or directory"]
