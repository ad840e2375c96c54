"""edge-infer report: one self-contained HTML page from an evaluation, checked as HTML and in a browser."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_infer.evaluation import report
from edge_infer.classes import CLASS_NAMES
from edge_infer.cli import main
from edge_infer.runtime import shipped_names

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed")

SECTIONS = ("summary", "models", "training", "corruptions", "confusion", "gallery")
CHROMIUM = Path("/usr/bin/chromium")
MANIFEST = {"models": [
    {"name": "robust", "precision": "fp32", "file": "robust.onnx", "bytes": 1_200_000, "params": 289_066,
     "macs_per_image": 29_128_448, "test_accuracy": 0.93},
    {"name": "small", "precision": "int8", "file": "small.int8.onnx", "bytes": 61_392, "params": 50_394,
     "macs_per_image": 62_880, "test_accuracy": 0.88},
]}


class ImageTags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.sources.append(attrs.get("src") or "")


def parse(page: str) -> ImageTags:
    parser = ImageTags()
    parser.feed(page)
    return parser


def decode_png(source: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix), source[:60]
    image = Image.open(io.BytesIO(base64.b64decode(source[len(prefix):], validate=True)))
    image.load()
    assert image.format == "PNG"
    return image


@pytest.fixture
def labelled_folder(tmp_path) -> Path:
    """Five small pictures of different modes (one transparent) and a labels.csv."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shirt = Image.new("RGB", (120, 160), (240, 240, 240))
    shirt.paste((200, 30, 30), (20, 20, 100, 140))
    shirt.save(folder / "shirt.png")
    bag = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    bag.paste((90, 60, 20, 255), (40, 20, 160, 90))
    bag.save(folder / "bag.png")
    Image.new("L", (28, 28), 40).save(folder / "grey.png")
    shirt.convert("P").save(folder / "palette.png")
    shirt.save(folder / "photo.jpg", quality=80)
    (folder / "labels.csv").write_text("file,class_index\nshirt.png,0\nbag.png,8\ngrey.png,1\n"
                                       "palette.png,0\nphoto.jpg,6\nbroken.png,2\n")
    return folder


def scores(predictions: list[tuple[str, int, int, float]], accuracy: float) -> dict:
    return {"images": len(predictions) + 1, "accuracy": accuracy, "accuracy_interval": [accuracy - 0.25, accuracy + 0.25],
            "per_class_accuracy": [None] * 10,
            "confusion_matrix": np.eye(10, dtype=int).tolist(), "ece": 0.1, "mean_confidence": 0.7,
            "errors": [{"path": "broken.png", "error": "not a recognised image format"}],
            "predictions": [{"path": p, "label": t, "predicted": y, "confidence": c} for p, t, y, c in predictions]}


def synthetic_evaluation(folder: Path) -> dict:
    """What `edge-infer evaluate --format json` writes, for two models, three corruptions and one folder."""
    rng = np.random.default_rng(0)
    predictions = [("shirt.png", 0, 0, 0.91), ("bag.png", 8, 8, 0.77), ("grey.png", 1, 3, 0.55),
                   ("palette.png", 0, 0, 0.6), ("photo.jpg", 6, 0, 0.42)]
    results = []
    for model, precision, level in (("robust", "fp32", 0.9), ("small", "int8", 0.8)):
        matrix = rng.integers(0, 20, (10, 10)) + np.diag(rng.integers(200, 300, 10))
        accuracy = {name: {str(s): level - 0.08 * s * k for s in range(1, 6)}
                    for k, name in enumerate(["shot_noise", "rotate", "fog"], start=1)}
        results.append({
            "model": model, "precision": precision, "path": f"/nowhere/{model}.onnx", "params": 1000,
            "clean": {"images": int(matrix.sum()), "accuracy": float(np.trace(matrix) / matrix.sum()),
                      "per_class_accuracy": [0.9] * 10, "confusion_matrix": matrix.tolist(), "ece": 0.031,
                      "mean_confidence": 0.8},
            "corruptions": {"images": 300, "seed": 0, "accuracy": accuracy,
                            "mean_per_corruption": {n: float(np.mean(list(r.values()))) for n, r in accuracy.items()},
                            "mean_corruption_accuracy": 0.6, "clean_accuracy_same_images": level,
                            "relative_drop": 0.3},
            "folders": {str(folder): {"robust": scores(predictions, 3 / 6), "plain": scores(predictions[:2], 2 / 6)}},
            "seconds": 1.5,
        })
    return {"results": results}


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    for name, top in (("robust", 0.92), ("small", 0.88)):
        (tmp_path / "runs" / name).mkdir(parents=True)
        epochs = np.arange(1, 6)
        history = {"loss": list(1 / epochs), "accuracy": list(top - 0.1 / epochs),
                   "val_loss": list(1.1 / epochs), "val_accuracy": list(top - 0.12 / epochs),
                   "learning_rate": [1e-3] * 5}
        (tmp_path / "runs" / name / "history.json").write_text(json.dumps(history))
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "history.json").write_text("{not json")
    return tmp_path / "runs"


@pytest.fixture
def page(labelled_folder, runs_dir) -> str:
    return report.build_report(synthetic_evaluation(labelled_folder), report.load_runs(runs_dir),
                               {("robust", "fp32"): 812.4}, "synthetic", manifest=MANIFEST)


def test_report_has_every_section_and_only_embedded_pngs(page):
    tags = parse(page)
    assert set(SECTIONS) <= tags.ids
    # comparison + 2 training figures + severity grid + 2 confusion matrices + 5 thumbnails
    assert len(tags.sources) == 1 + 2 + 1 + 2 + 5
    sizes = [decode_png(source).size for source in tags.sources]
    thumbnails = sizes[-5:]
    assert all(max(size) <= report.THUMBNAIL_SIZE for size in thumbnails)
    assert max(max(size) for size in thumbnails) == report.THUMBNAIL_SIZE
    assert not re.search(r"https?:", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert re.findall(r"<script[^>]*>", page) == ["<script>"]  # the inline image check only


def test_report_shows_the_numbers_and_marks_wrong_predictions(page):
    assert "289,066" in page and "1.1 MiB" in page and "60 KiB" in page
    assert "812 &micro;s" in page
    assert "robust/fp32" in page and "small/int8" in page
    assert "broken/history.json: unreadable" in page
    # 2 wrong predictions and the unreadable file, each with a red tile and the true class
    assert page.count('class="tile wrong"') == 3
    assert page.count('class="tile right"') == 3
    assert "true: Trouser" in page and f"true: {CLASS_NAMES[6]}" in page
    assert "6 images, 2 predicted wrong, 1 unreadable" in page
    assert 'title="95 % interval 25.0-75.0 % of 6 images">50.0<' in page  # a folder's accuracy, its interval on hover


def test_thumbnail_is_flattened_onto_white(labelled_folder):
    png, size = report.thumbnail_png(labelled_folder / "bag.png")
    thumb = Image.open(io.BytesIO(png))
    assert size == thumb.size == (96, 48)
    assert thumb.mode == "RGB" and thumb.getpixel((0, 0)) == (255, 255, 255)
    assert thumb.getpixel((48, 24)) == (90, 60, 20)


def test_text_is_escaped_and_missing_parts_are_noted(tmp_path):
    evaluation = {"results": [{"model": "<script>alert(1)</script>", "precision": "fp32",
                               "folders": {str(tmp_path / "gone"): {"robust": scores([("a&b.png", 0, 1, 0.5)], 0.0)}}}]}
    page = report.build_report(evaluation, manifest={"models": []})
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&amp;b.png" in page and "a&b.png" not in page
    assert "No training runs given" in page
    assert "no corruption suite" in page and "no clean test-set scores" in page
    assert "original files were not found" in page
    assert parse(page).sources == []
    assert set(SECTIONS) <= parse(page).ids


def test_gallery_is_capped_and_sampled_evenly(labelled_folder):
    page = report.build_report(synthetic_evaluation(labelled_folder), gallery_limit=2, manifest=MANIFEST)
    assert "Showing 2 of 5, sampled evenly" in page
    assert page.count('class="tile ') == 2 + 1  # two sampled photos and the unreadable file


@pytest.mark.parametrize("content, message", [
    (None, "no such evaluation file"),
    ("{not json", "not valid JSON (line 1"),
    ('{"rows": []}', "not an edge-infer evaluation"),
    ('{"results": [{"model": "x"}]}', 'results[0] has no "model" and "precision"'),
])
def test_bad_evaluation_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "eval.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(report.ReportError, match=re.escape(message)):
        report.load_evaluation(path)
    result = CliRunner().invoke(main, ["report", "--evaluation", str(path), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_malformed_evaluation_inside_is_an_error_not_a_traceback(tmp_path):
    evaluation = {"results": [{"model": "m", "precision": "fp32", "clean": {"confusion_matrix": "nope"}}]}
    with pytest.raises(report.ReportError, match="malformed"):
        report.build_report(evaluation, manifest={"models": []})


def test_benchmark_latency_is_read_and_other_shapes_ignored(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"models": [{"model": "robust", "precision": "int8", "latency_us": {"p50": 95.5}},
                                           {"model": "x", "latency_us": 3}, "junk"]}))
    assert report.load_latencies(path) == {("robust", "int8"): 95.5}
    path.write_text(json.dumps([1, 2]))
    assert report.load_latencies(path) == {}


def test_cli_writes_the_page(tmp_path, labelled_folder, runs_dir):
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps(synthetic_evaluation(labelled_folder)))
    output = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--evaluation", str(evaluation), "--runs", str(runs_dir),
                                       "-o", str(output)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert set(SECTIONS) <= parse(output.read_text()).ids


def test_cli_refuses_evaluation_options_with_an_evaluation_file(tmp_path, labelled_folder):
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps(synthetic_evaluation(labelled_folder)))
    result = CliRunner().invoke(main, ["report", str(labelled_folder), "--evaluation", str(evaluation),
                                       "--corruption-images", "5", "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "only used without --evaluation" in result.stderr


def test_cli_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = CliRunner().invoke(main, ["report", "--evaluation", str(tmp_path / "e.json"), "-o", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.stderr == f"edge-infer: error: {report.INSTALL_HINT}\n"


@pytest.mark.skipif(not shipped_names(), reason="no models are shipped in this install")
def test_cli_evaluates_the_shipped_models_itself(tmp_path, labelled_folder):
    output = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(labelled_folder), "--no-test-set", "--threads", "1",
                                       "-o", str(output)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    page = output.read_text()
    for name in shipped_names():
        assert f"{name}/fp32" in page
    assert "labelled folders only" in page and page.count('class="tile ') == 6


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path, page):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    html_path = tmp_path / "report.html"
    html_path.write_text(page)
    expected = len(parse(page).sources)
    common = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([*common, "--dump-dom", html_path.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', dom)) == expected
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert f'data-images-total="{expected}"' in body
    assert f'data-images-loaded="{expected}"' in body, body
    shot = tmp_path / "shot.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,3000", html_path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as image:
        assert image.size == (1200, 3000)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 100  # text, charts and photos, not a blank page
