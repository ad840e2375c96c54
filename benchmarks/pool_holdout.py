"""Accuracy on the phone-photo pool's held-out photographers: real photos no model trained on,
taken by people none of the training photos came from (a cross-check for realdev, whose
photographers overlap the pool's).

    python benchmarks/pool_holdout.py [-m robust] [--precision int8 ...] [--json FILE --key NAME]

The photos are the committed arrays in train/photo_pool/pool.npz (already preprocessed by
this version's robust preprocessing), so no photo files are needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge_infer.classes import CLASS_NAMES  # noqa: E402
from edge_infer.classifier import Classifier  # noqa: E402
from edge_infer.datasets import to_model_input  # noqa: E402
from edge_infer.evaluation.benchmark import store_under_key  # noqa: E402
from train import photo_pool  # noqa: E402


def probabilities(classifier: Classifier, photos: photo_pool.PhotoSet) -> np.ndarray:
    """The classifier's (N, 10) answers on the pool's photos (already preprocessed)."""
    return classifier.classify_arrays(to_model_input(photos.images))


def score(model: str, precision: str, photos: photo_pool.PhotoSet) -> dict:
    predicted = probabilities(Classifier(model, precision), photos).argmax(1)
    right = predicted == photos.labels
    per_class = {CLASS_NAMES[k]: {"images": int((photos.labels == k).sum()),
                                  "accuracy": float(right[photos.labels == k].mean())}
                 for k in np.unique(photos.labels)}
    return {"model": model, "precision": precision, "images": int(len(right)),
            "photographers": int(len(set(photos.groups))), "accuracy": float(right.mean()), "per_class": per_class}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", action="append", help="repeatable (default: robust)")
    parser.add_argument("--precision", action="append", help="repeatable (default: int8)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--key", default="current")
    args = parser.parse_args()
    photos = photo_pool.load_photos(photo_pool.POOL_FILE, split="holdout")
    results = [score(m, p, photos) for m in args.model or ["robust"] for p in args.precision or ["int8"]]
    for r in results:
        print(f"{r['model']}/{r['precision']}: {r['accuracy']:.1%} of {r['images']} photos "
              f"({r['photographers']} held-out photographers)")
    if args.json:
        store_under_key(args.json, args.key, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
