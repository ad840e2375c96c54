"""unseen/: labelled third-party artwork and the shifted test set are complete and consistent.

Fast and offline: reads only what unseen/build.py left in the work tree.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from edge_infer.classes import CLASS_NAMES

UNSEEN = Path(__file__).resolve().parent.parent / "unseen"
ARTWORK_LABELS = UNSEEN / "labels.csv"
SHIFTED_LABELS = UNSEEN / "shifted" / "labels.csv"
HEADER = ["file", "class_index", "class_name", "source", "licence"]
ARTWORK_SOURCES = {"noto": "OFL-1.1", "twemoji": "CC-BY-4.0", "openclipart": "public domain"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
# No emoji exists for a pullover or sweater, and openclipart-png has no drawing of one, so
# Pullover (2) has no artwork from these three sources; shifted/ covers it instead.
CLASSES_WITHOUT_ARTWORK = {CLASS_NAMES.index("Pullover")}


def read_labels(path: Path) -> list[dict]:
    assert path.is_file(), f"{path} missing: run python unseen/build.py"
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == HEADER
        return list(reader)


@pytest.fixture(scope="module")
def artwork() -> list[dict]:
    return read_labels(ARTWORK_LABELS)


@pytest.fixture(scope="module")
def shifted() -> list[dict]:
    return read_labels(SHIFTED_LABELS)


@pytest.mark.parametrize("which", ["artwork", "shifted"])
def test_listed_files_exist_open_and_are_labelled_consistently(which, request):
    rows = request.getfixturevalue(which)
    assert rows
    files = [row["file"] for row in rows]
    assert files == sorted(files), "labels.csv is sorted by file"
    assert len(set(files)) == len(files), "no file listed twice"
    for row in rows:
        path = (UNSEEN if which == "artwork" else UNSEEN / "shifted") / row["file"]
        assert path.is_file(), row["file"]
        with Image.open(path) as image:
            image.load()
            assert min(image.size) > 0
        index = int(row["class_index"])
        assert 0 <= index < len(CLASS_NAMES), row
        assert row["class_name"] == CLASS_NAMES[index], row
        assert row["source"] and row["licence"], row


def test_artwork_sources_and_licences(artwork):
    for row in artwork:
        folder = row["file"].split("_")[0]
        assert folder in ARTWORK_SOURCES, row["file"]
        assert row["licence"] == ARTWORK_SOURCES[folder], row
    assert {row["file"].split("_")[0] for row in artwork} == set(ARTWORK_SOURCES)


def test_every_class_has_artwork_except_those_no_source_draws(artwork):
    present = {int(row["class_index"]) for row in artwork}
    assert present == set(range(len(CLASS_NAMES))) - CLASSES_WITHOUT_ARTWORK


def test_shifted_has_ten_fashion_mnist_images_per_class(shifted):
    assert len(shifted) == 100
    for index in range(len(CLASS_NAMES)):
        assert sum(int(row["class_index"]) == index for row in shifted) == 10
    for row in shifted:
        number = int(Path(row["file"]).stem)
        assert row["file"] == f"{number:05d}.jpg"  # relative to shifted/, where labels.csv is
        assert row["source"] == f"Fashion-MNIST test image {number}"
        assert row["licence"] == "MIT (Fashion-MNIST)"


def test_no_image_is_unlabelled(artwork, shifted):
    listed = {row["file"] for row in artwork} | {f"shifted/{row['file']}" for row in shifted}
    on_disk = {
        path.relative_to(UNSEEN).as_posix()
        for path in UNSEEN.rglob("*")
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    }
    assert on_disk == listed


def test_attribution_credits_each_source_and_licence():
    text = (UNSEEN / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for needle in (
        "Noto Color Emoji",
        "Google",
        "OFL-1.1",
        "Twemoji",
        "Twitter",
        "CC-BY 4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        "Open Clip Art Library",
        "public domain",
        "Fashion-MNIST",
        "python unseen/build.py",
        "fonts-noto-color-emoji",
        "librsvg2-bin",
        "openclipart-png",
        "@twemoji/svg",
    ):
        assert needle in text, needle


def _build_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("unseen_build", UNSEEN / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_larger_shifted_set_can_be_built_alone(tiny_dataset, tmp_path, capsys):
    build = _build_script()
    out = tmp_path / "listing"
    assert build.main(["--shifted-only", "3", "--seed", "1", "--out", str(out), "--data-dir", str(tiny_dataset)]) == 0
    rows = read_labels(out / "labels.csv")
    assert len(rows) == 30 and all(sum(r["class_index"] == str(c) for r in rows) == 3 for c in range(10))
    assert sorted(p.suffix for p in out.iterdir()) == [".csv"] + [".jpg"] * 30  # the set itself, nothing else
    assert build.main(["--shifted-only", "200", "--out", str(out), "--data-dir", str(tiny_dataset)]) == 1
    assert "has only" in capsys.readouterr().err  # the tiny test set has fewer than 200 of a class


@pytest.mark.parametrize("where, message", [
    (lambda tmp: UNSEEN, "outside unseen/"),  # the default --out: the committed sets
    (lambda tmp: UNSEEN / "shifted", "outside unseen/"),
    (lambda tmp: tmp, "has files but no labels.csv"),  # someone's folder: its images would be pruned
])
def test_a_larger_shifted_set_never_replaces_the_committed_ones_or_a_users_files(where, message, tmp_path, capsys):
    build = _build_script()
    (tmp_path / "holiday.jpg").write_bytes(b"not ours")
    with pytest.raises(SystemExit) as exit_info:
        build.main(["--shifted-only", "2", "--out", str(where(tmp_path))])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert (tmp_path / "holiday.jpg").read_bytes() == b"not ours"
