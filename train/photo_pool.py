"""Real phone photos for training, sent through the runtime's own preprocessing.

The shipped pool is the clothing dataset by Alexey Grigorev (github.com/alexeygrigorev/
clothing-dataset, CC0 1.0; see train/photo_pool/ATTRIBUTION.md): phone photos of garments on
beds, floors and hangers. Its labels are mapped to the ten classes by `LABEL_TO_CLASS` (the
`Shoes` were labelled one by one, in shoes.csv); the 28x28 arrays the robust preprocessing
makes of them are committed (pool.npz), so a fresh clone retrains without the photos.

    python -m train.photo_pool SOURCE   # SOURCE: images/<id>.jpg + labels.csv (file,label,kids,photographer)

Users bring their own labelled photos with `python -m train --photos DIR`, DIR laid out as
`edge-infer evaluate` reads it (labels.csv with file,class_index). NumPy and Pillow only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_infer.loading import load_and_preprocess
from edge_infer.evaluation.evaluate import LabelsError, read_labelled_folder
from edge_infer.files import InputFile, write_atomic
from edge_infer.preprocess import PREPROCESS_VERSION, to_uint8_image

POOL_DIR = Path(__file__).resolve().parent / "photo_pool"
POOL_FILE = POOL_DIR / "pool.npz"

# The dataset's label -> Fashion-MNIST class index; None = not used (the reason beside it).
LABEL_TO_CLASS: dict[str, int | None] = {
    "T-Shirt": 0,
    "Top": 0,
    "Undershirt": 0,  # vests and tank tops: Fashion-MNIST's "top"
    "Polo": None,  # a collar and buttons on a T-shirt's body: between T-shirt/top and Shirt
    "Blouse": None,  # 10 images, split between Shirt and top
    "Pants": 1,
    "Longsleeve": 2,  # knitted sweaters and long-sleeved tees: in 28x28 both have the Pullover outline
    "Hoodie": 2,
    "Dress": 3,
    "Outwear": 4,
    "Blazer": 4,
    "Shirt": 6,
    "Shoes": None,  # by image, from shoes.csv: sandals, sneakers, ankle boots; heels and formal shoes skipped
}
HOLDOUT_SHARE = 0.15  # photographers (by a hash of their id) kept out of training, for a cross-check


@dataclass(frozen=True)
class PhotoSet:
    images: np.ndarray  # (N, 28, 28) uint8, what the robust preprocessing made of each photo
    labels: np.ndarray  # (N,) int64 class indices
    groups: np.ndarray  # (N,) str: the photographer (pool) or "" (a user's folder)
    names: np.ndarray  # (N,) str: file names, for tracing a sample back to its photo


def held_out(photographer: str) -> bool:
    """Whether a photographer's photos are kept out of training (stable across runs and machines)."""
    digest = hashlib.sha256(photographer.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < HOLDOUT_SHARE


def read_shoe_labels(path: Path = POOL_DIR / "shoes.csv") -> dict[str, int]:
    with path.open(newline="") as handle:
        return {row["id"]: int(row["class_index"]) for row in csv.DictReader(handle) if row["class_index"]}


def mapped_rows(source: Path) -> list[dict]:
    """The pool's labels.csv rows that map to a class, with class_index and split added."""
    shoes = read_shoe_labels()
    rows = []
    with (source / "labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            image_id = Path(row["file"]).stem
            index = shoes.get(image_id) if row["label"] == "Shoes" else LABEL_TO_CLASS.get(row["label"])
            if index is None:
                continue
            split = "holdout" if held_out(row["photographer"]) else "train"
            rows.append({"file": row["file"], "label": row["label"], "class_index": index,
                         "photographer": row["photographer"], "split": split})
    return rows


def preprocess_files(paths: list[Path]) -> tuple[np.ndarray, list[str]]:
    """uint8 28x28 arrays for the files that decode, and one error line per file that does not."""
    arrays, errors = [], []
    for path in paths:
        loaded = load_and_preprocess(InputFile(path, str(path)), "robust")
        if loaded.array is None:
            errors.append(f"{path}: {loaded.error}")
            arrays.append(None)
        else:
            arrays.append(np.asarray(to_uint8_image(loaded.array)))
    return arrays, errors


def build(source: Path, out: Path = POOL_FILE) -> dict:
    """Preprocess the mapped photos of `source` into `out` (.npz), with the split and mapping."""
    rows = mapped_rows(source)
    arrays, errors = preprocess_files([source / row["file"] for row in rows])
    keep = [i for i, array in enumerate(arrays) if array is not None]
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays_out = dict(
        images=np.stack([arrays[i] for i in keep]),
        labels=np.array([rows[i]["class_index"] for i in keep], dtype=np.int64),
        groups=np.array([rows[i]["photographer"] for i in keep]),
        names=np.array([Path(rows[i]["file"]).name for i in keep]),
        splits=np.array([rows[i]["split"] for i in keep]),
        preprocess_version=np.array(PREPROCESS_VERSION),
    )
    write_atomic(out, lambda handle: np.savez_compressed(handle, **arrays_out))
    counts = np.bincount([rows[i]["class_index"] for i in keep], minlength=10)
    return {"images": len(keep), "errors": errors, "per_class": counts.tolist(),
            "holdout": sum(rows[i]["split"] == "holdout" for i in keep)}


class PhotosError(Exception):
    """A --photos source cannot be used (one line, for the command line)."""


def load_photos(source: str | Path, split: str | None = "train") -> PhotoSet:
    """Labelled photos from a pool .npz (only `split`'s part, all if None) or a labelled folder."""
    source = Path(source)
    if source.suffix == ".npz":
        return _load_npz(source, split)
    try:
        folder = read_labelled_folder(source)
    except LabelsError as exc:
        raise PhotosError(str(exc)) from None
    arrays, errors = preprocess_files([item.path for item in folder.files])
    for line in errors:
        print(f"skipped {line}", file=sys.stderr)
    keep = [i for i, array in enumerate(arrays) if array is not None]
    if not keep:
        raise PhotosError(f"{source}: none of its {len(arrays)} labelled images could be read")
    return PhotoSet(np.stack([arrays[i] for i in keep]), folder.labels[keep],
                    np.array([""] * len(keep)), np.array([folder.files[i].name for i in keep]))


def _load_npz(path: Path, split: str | None) -> PhotoSet:
    if not path.is_file():
        raise PhotosError(f"{path}: no such file")
    with np.load(path) as data:
        version = str(data["preprocess_version"])
        if version != PREPROCESS_VERSION:
            raise PhotosError(f"{path} was preprocessed for {version!r}, this install makes {PREPROCESS_VERSION!r}: "
                              f"rebuild it with `python -m train.photo_pool SOURCE`")
        chosen = np.ones(len(data["labels"]), dtype=bool) if split is None else data["splits"] == split
        return PhotoSet(data["images"][chosen], data["labels"][chosen], data["groups"][chosen], data["names"][chosen])


def sample_photographers(photos: PhotoSet, fraction: float, seed: int) -> PhotoSet:
    """The photos of a seeded `fraction` of the photographers (of the photos, where none are
    named), for learning curves: photos by one person stay together, as in the hold-out."""
    if fraction >= 1.0:
        return photos
    groups = photos.groups if (photos.groups != "").all() else np.arange(len(photos.labels)).astype(str)
    people = np.unique(groups)
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(people)[: max(1, round(fraction * len(people)))]
    keep = np.isin(groups, chosen)
    return PhotoSet(photos.images[keep], photos.labels[keep], photos.groups[keep], photos.names[keep])


def balanced_repeats(labels: np.ndarray, per_class: int, max_repeat: int) -> np.ndarray:
    """Indices that repeat each class's photos towards `per_class` samples (at most `max_repeat`
    times each), so a class with few photos is not drowned by one with many."""
    order = []
    for index in np.unique(labels):
        members = np.flatnonzero(labels == index)
        repeat = int(np.clip(round(per_class / len(members)), 1, max_repeat))
        order.append(np.tile(members, repeat))
    return np.concatenate(order) if order else np.zeros(0, dtype=np.int64)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.photo_pool", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the clothing-dataset folder (images/, labels.csv)")
    parser.add_argument("--out", type=Path, default=POOL_FILE)
    args = parser.parse_args(argv)
    if not (args.source / "labels.csv").is_file():
        print(f"error: {args.source}: no labels.csv", file=sys.stderr)
        return 2
    result = build(args.source, args.out)
    for line in result["errors"]:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{args.out}: {result['images']} photos ({result['holdout']} from held-out photographers), "
          f"per class {result['per_class']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
