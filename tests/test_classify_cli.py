"""edge-infer classify end to end: good and bad files, formats, exit codes, no tracebacks."""

import csv
import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_infer import CLASS_NAMES, Classifier
from edge_infer.cli import main


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def gigantic_png() -> bytes:
    """A valid PNG header claiming 100000 x 100000 pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "other").mkdir()
    trouser = Image.new("RGB", (300, 400), (245, 245, 245))
    trouser.paste((30, 30, 90), (110, 20, 190, 380))
    trouser.save(folder / "trouser.JPG")
    Image.new("L", (28, 28), 0).save(folder / "sub" / "same.png")
    Image.new("L", (28, 28), 0).save(folder / "other" / "same.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    (folder / "text.png").write_text("not an image either")
    buffer = io.BytesIO()
    trouser.save(buffer, "JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[:400])
    (folder / "bomb.png").write_bytes(gigantic_png())
    (folder / "dir.png").mkdir()
    os.symlink("loop_b.png", folder / "loop_a.png")
    os.symlink("loop_a.png", folder / "loop_b.png")
    return folder


BAD = {"empty.png", "text.png", "truncated.jpg", "bomb.png", "dir.png", "loop_a.png", "loop_b.png"}


def at(folder, names):
    """Record paths as the CLI reports them: the folder as given, joined with the file's path in it."""
    return {str(folder / name) for name in names}


def run_cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_bad_files_are_reported_and_the_rest_classified(mixed_folder):
    result = run_cli("classify", str(mixed_folder), "--format", "jsonl")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    by_path = {os.path.relpath(r["path"], mixed_folder): r for r in records}
    assert {r["path"] for r in records} == at(mixed_folder, BAD | {"trouser.JPG"})  # sub/, other/ not entered
    assert by_path["trouser.JPG"]["label"] in CLASS_NAMES and not by_path["trouser.JPG"]["error"]
    for name in BAD:
        assert by_path[name]["error"], name
        assert by_path[name]["class_index"] is None
    assert "megapixel" in by_path["bomb.png"]["error"]
    assert "empty" in by_path["empty.png"]["error"]
    assert "directory" in by_path["dir.png"]["error"]
    error_lines = [line for line in result.stderr.splitlines() if line]
    assert len(error_lines) == len(BAD)
    for name in BAD:
        assert sum(str(mixed_folder / name) in line for line in error_lines) == 1
    assert "Traceback" not in result.stderr


def test_the_summary_names_the_sub_folders_it_did_not_enter(mixed_folder):
    result = run_cli("classify", str(mixed_folder), "-q")
    assert f"{mixed_folder / 'sub'}: 1 images not read (a sub-folder: use -r)" in result.stdout
    summary = json.loads(run_cli("classify", str(mixed_folder), "-q", "--format", "json").stdout)["summary"]
    assert summary["skipped_folders"] == [{"path": str(mixed_folder / "other"), "images": 1},
                                          {"path": str(mixed_folder / "sub"), "images": 1}]
    assert summary["failed"] == len(BAD) and summary["classified"] == 1


def test_paths_are_as_the_user_can_open_them_from_where_they_ran(mixed_folder, monkeypatch):
    monkeypatch.chdir(mixed_folder.parent)
    result = run_cli("classify", "photos/", "-r", "--format", "json", "-q")
    paths = {r["path"] for r in json.loads(result.stdout)["results"]}
    assert {"photos/trouser.JPG", "photos/sub/same.png", "photos/other/same.png"} <= paths
    assert all(os.path.lexists(path) for path in paths)


def test_recursive_paths_stay_distinct(mixed_folder):
    result = run_cli("classify", str(mixed_folder), "-r", "--format", "json", "-q")
    paths = [r["path"] for r in json.loads(result.stdout)["results"]]
    assert str(mixed_folder / "sub/same.png") in paths and str(mixed_folder / "other/same.png") in paths
    assert json.loads(result.stdout)["summary"]["skipped_non_images"] == 1
    assert result.stderr == ""  # --quiet


def test_all_good_exits_zero_with_table_and_summary(tmp_path):
    Image.new("L", (28, 28), 0).save(tmp_path / "a.png")
    result = run_cli("classify", str(tmp_path / "a.png"))
    assert result.exit_code == 0
    assert "a.png" in result.stdout and "1 classified, 0 failed" in result.stdout


def test_csv_output_file_is_written_whole(tmp_path, mixed_folder):
    target = tmp_path / "out.csv"
    result = run_cli("classify", str(mixed_folder), "--format", "csv", "-o", str(target), "-q", "--top-k", "2")
    assert result.exit_code == 1 and result.stdout == ""
    rows = list(csv.DictReader(target.open()))
    assert {r["path"] for r in rows} == at(mixed_folder, BAD | {"trouser.JPG"})
    good = next(r for r in rows if r["path"] == str(mixed_folder / "trouser.JPG"))
    assert good["top1_label"] in CLASS_NAMES and float(good["top2_probability"]) <= float(good["top1_probability"])
    assert "top3_label" not in good and good["error"] == ""
    bad = next(r for r in rows if r["path"] == str(mixed_folder / "empty.png"))
    assert bad["class_index"] == "" and bad["confidence"] == "" and bad["top1_label"] == "" and bad["error"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_min_confidence_marks_uncertain_and_keeps_best_guess(tmp_path):
    Image.new("L", (28, 28), 0).save(tmp_path / "blank.png")
    result = run_cli("classify", str(tmp_path), "--min-confidence", "1.0", "--format", "json")
    record = json.loads(result.stdout)["results"][0]
    assert record["label"] == "uncertain" and record["best_label"] in CLASS_NAMES
    assert record["class_index"] is None and CLASS_NAMES[record["best_class_index"]] == record["best_label"]
    assert record["error"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["classify", "--model", "nope", "x.png"], "unknown model"),
        (["classify", "--top-k", "0", "x.png"], "Invalid value"),
        (["classify", "--format", "xml", "x.png"], "Invalid value"),
    ],
)
def test_usage_errors_exit_two(args, message, tmp_path):
    result = run_cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_missing_or_unreadable_file_alone_is_a_failed_input_not_a_usage_error(tmp_path):
    result = run_cli("classify", str(tmp_path / "missing.png"))
    assert result.exit_code == 1 and "missing.png: no such file" in result.stderr
    (tmp_path / "broken.png").write_bytes(b"not a png")
    result = run_cli("classify", str(tmp_path / "broken.png"), "--format", "json")
    assert result.exit_code == 1 and json.loads(result.stdout)["summary"]["failed"] == 1


def test_folder_without_images_exits_two(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    result = run_cli("classify", str(tmp_path))
    assert result.exit_code == 2 and "no images found" in result.stderr


def test_save_preprocessed_writes_what_the_model_saw(tmp_path, mixed_folder):
    out = tmp_path / "seen"
    run_cli("classify", str(mixed_folder), "-r", "--save-preprocessed", str(out), "-q")
    saved = sorted(p.name for p in out.iterdir())
    assert saved == ["other__same.png", "sub__same.png", "trouser.png"]
    assert Image.open(out / "trouser.png").size == (28, 28)


def test_python_api_mirrors_the_cli(mixed_folder):
    classifier = Classifier(top_k=2)
    result = classifier.classify([mixed_folder])
    assert {r.path for r in result} == at(mixed_folder, BAD | {"trouser.JPG"})
    assert all(len(r.top_k) == 2 for r in result if not r.error)
    cli = json.loads(run_cli("classify", str(mixed_folder), "--top-k", "2", "--format", "json").stdout)
    assert [r.to_dict() for r in result] == cli["results"]
    assert result.summary() == cli["summary"]
    # one path as a plain string works too
    assert [r.path for r in classifier.classify(str(mixed_folder))] == [r.path for r in result]


def test_console_script_runs_in_a_fresh_process(mixed_folder):
    """The installed entry point: real exit code and stderr, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "edge_infer", "classify", str(mixed_folder), "-q",
                           "--format", "csv"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stdout.startswith("path,label,class_index,confidence")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_fashion_mnist_pngs_score_as_the_arrays(tmp_path, real_test_set):
    """The 28x28 pass-through: classifying the whole test set as PNG files equals the arrays."""
    images, labels = real_test_set.images, real_test_set.labels
    for i, image in enumerate(images):
        Image.fromarray(image, "L").save(tmp_path / f"{i:05d}.png")
    classifier = Classifier()
    records = classifier.classify([tmp_path])
    from_files = np.array([CLASS_NAMES.index(r.label) for r in records])
    from_arrays = classifier.classify_arrays(images.astype(np.float32) / 255.0).argmax(1)
    assert np.array_equal(from_files, from_arrays)
    assert (from_files == labels).mean() == (from_arrays == labels).mean()


def test_a_model_for_other_preprocessing_warns_but_still_classifies(tmp_path):
    from edge_infer import runtime
    from .conftest import with_preprocessing

    model = with_preprocessing(runtime.MODELS_DIR / "model1.onnx", tmp_path / "old.onnx", "robust-0")
    Image.new("L", (28, 28), 0).save(tmp_path / "a.png")
    result = run_cli("classify", str(tmp_path / "a.png"), "--model", str(model))
    assert result.exit_code == 0 and "a.png" in result.stdout
    assert "warning:" in result.stderr and "robust-0" in result.stderr
    quiet = run_cli("classify", str(tmp_path / "a.png"), "--model", str(model), "--preprocess", "plain")
    assert "warning:" not in quiet.stderr


def test_mirror_average_makes_predictions_mirror_invariant():
    rng = np.random.default_rng(0)
    images = rng.random((6, 28, 28), dtype=np.float32)
    mirrored = images[:, :, ::-1].copy()
    plain = Classifier("model2", "fp32")
    assert not np.allclose(plain.classify_arrays(images), plain.classify_arrays(mirrored), atol=1e-3)
    both = Classifier("model2", "fp32", mirror_average=True)
    averaged = both.classify_arrays(images)
    assert np.allclose(averaged, both.classify_arrays(mirrored), atol=1e-6)
    assert np.allclose(averaged.sum(1), 1, atol=1e-5)


def test_classify_cli_accepts_mirror_average(tmp_path):
    Image.new("L", (28, 28), 0).save(tmp_path / "a.png")
    result = run_cli("classify", str(tmp_path / "a.png"), "--mirror-average", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["results"][0]["label"]


def test_ctrl_c_exits_130_with_one_line_and_leaves_no_output_file(tmp_path, monkeypatch, capsys):
    from edge_infer import cli

    Image.new("L", (28, 28), 0).save(tmp_path / "a.png")
    target = tmp_path / "out.json"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Classifier, "classify_files", interrupted)
    monkeypatch.setattr(sys, "argv", ["edge-infer", "classify", str(tmp_path), "-o", str(target)])
    with pytest.raises(SystemExit) as exit_info:
        cli.run()
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "edge-infer: interrupted" and "Aborted" not in err
    assert not target.exists()


def test_console_script_exit_codes_for_usage_errors_and_help(monkeypatch, capsys):
    from edge_infer import cli

    for argv, code in ((["classify", "--top-k", "0", "x.png"], 2), (["--help"], 0), (["nope"], 2)):
        monkeypatch.setattr(sys, "argv", ["edge-infer", *argv])
        with pytest.raises(SystemExit) as exit_info:
            cli.run()
        assert exit_info.value.code == code, argv
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("name, check", [
    ("out.csv", lambda text: text.startswith("path,label,class_index")),
    ("out.json", lambda text: json.loads(text)["summary"]["images"] == 1),
    ("out.jsonl", lambda text: json.loads(text.splitlines()[0])["path"].endswith("a.png")),
    ("out.txt", lambda text: "1 classified, 0 failed" in text),
])
def test_output_extension_picks_the_format_unless_format_is_given(tmp_path, name, check):
    Image.new("L", (28, 28), 0).save(tmp_path / "a.png")
    target = tmp_path / name
    result = run_cli("classify", str(tmp_path / "a.png"), "-o", str(target))
    assert result.exit_code == 0 and check(target.read_text())
    assert f"wrote 1 records to {target}" in result.stderr
    run_cli("classify", str(tmp_path / "a.png"), "-o", str(target), "-f", "csv", "-q")
    assert target.read_text().startswith("path,")


def test_models_marks_the_default_and_info_has_a_table():
    listing = run_cli("models").stdout
    assert [line for line in listing.splitlines() if "(default)" in line] == [
        next(line for line in listing.splitlines() if line.startswith("robust") and "int8" in line)]
    assert "robust.e2e.onnx: robust (int8) with preprocessing" in listing
    table = run_cli("info", "-f", "table")
    assert table.exit_code == 0 and table.stdout.splitlines()[0].split() == ["key", "value"]
    assert "robust.int8.onnx" in table.stdout
    assert json.loads(run_cli("info").stdout)["path"].endswith("robust.int8.onnx")


def test_progress_is_a_plain_periodic_line_when_piped(capsys):
    from edge_infer.cli import _Progress

    report = _Progress(terminal=False, every_s=0.0)
    report(256, 1000)
    report(1000, 1000)  # the end is not announced as progress: the summary follows
    report.close()
    assert capsys.readouterr().err == "edge-infer: classified 256/1000\n"
    quiet_for_now = _Progress(terminal=False, every_s=3600)
    quiet_for_now(256, 1000)
    assert capsys.readouterr().err == ""


def test_progress_on_a_terminal_is_a_bar_that_reaches_the_total(capsys, monkeypatch):
    from edge_infer.cli import _Progress

    monkeypatch.setattr("click._termui_impl.isatty", lambda stream: True)  # render as on a terminal
    report = _Progress(terminal=True)
    report(256, 1000)
    report(1000, 1000)
    report.close()
    assert report.bar.pos == 1000 and report.bar.length == 1000
    assert "classifying" in capsys.readouterr().err


def test_an_ort_format_model_classifies_like_its_onnx_file(mixed_folder):
    from edge_infer import runtime

    answers = {}
    for suffix in (".onnx", ".ort"):
        model = str(runtime.MODELS_DIR / f"robust.int8{suffix}")
        result = run_cli("classify", str(mixed_folder), "-m", model, "--format", "json", "-q")
        answers[suffix] = [(r["path"], r["class_index"]) for r in json.loads(result.stdout)["results"]]
    assert answers[".onnx"] == answers[".ort"] and len(answers[".ort"]) > 3
