"""What `classify --min-confidence` buys: the share of photos answered and the accuracy on them,
for a range of thresholds, on labelled folders and on the phone-photo pool's held-out
photographers (the pool's arrays ship in train/photo_pool, so no photo files are needed).

    python benchmarks/confidence.py [FOLDER...] [-m robust] [--precision int8]
        [--by-prefix cds,fpi] [--json benchmarks/results/confidence.json]

Pick a threshold on the pool's held-out photographers and read its effect on the other sets:
a threshold tuned on the set it is reported on would flatter itself. Folders go through the
robust preprocessing (classify's default); an unreadable file counts as unanswered.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge_infer.classifier import Classifier  # noqa: E402
from edge_infer.evaluation.benchmark import machine, store_under_key  # noqa: E402
from edge_infer.evaluation.evaluate import EvaluationError, evaluate_folder, read_labelled_folder  # noqa: E402
from edge_infer.evaluation.metrics import base_name_starts, selective_accuracy  # noqa: E402
from edge_infer.runtime import ModelError  # noqa: E402
from pool_holdout import probabilities  # noqa: E402
from train import photo_pool  # noqa: E402

THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def folder_outcomes(classifier: Classifier, folder: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, confidence, correct) per file of a labelled folder; unreadable files have
    confidence -1, so no threshold answers them."""
    labelled = read_labelled_folder(folder)
    result = evaluate_folder(classifier, labelled, "robust")
    by_name = {p["path"]: p for p in result["predictions"]}
    names = [item.name for item in labelled.files]
    confidence = np.array([by_name[n]["confidence"] if n in by_name else -1.0 for n in names])
    correct = np.array([n in by_name and by_name[n]["predicted"] == by_name[n]["label"] for n in names])
    return names, confidence, correct


def pool_outcomes(classifier: Classifier) -> tuple[np.ndarray, np.ndarray]:
    photos = photo_pool.load_photos(photo_pool.POOL_FILE, split="holdout")
    answers = probabilities(classifier, photos)
    return answers.max(1), answers.argmax(1) == photos.labels


def table(title: str, rows: list[dict], images: int) -> str:
    if not images:
        return f"{title}: no images"
    cells = [f"{r['min_confidence']:.1f}: {r['coverage']:.0%} answered, "
             + ("-" if r["accuracy"] is None else f"{r['accuracy']:.1%} right") for r in rows]
    return f"{title} ({images} images)\n  " + "\n  ".join(cells)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("-m", "--model", default="robust")
    parser.add_argument("--precision")
    parser.add_argument("--by-prefix", default="", help="also split each folder by file-name prefix, e.g. cds,fpi")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--key", default="current")
    args = parser.parse_args(argv)
    try:
        classifier = Classifier(args.model, args.precision)
        sets = {"pool hold-out": pool_outcomes(classifier)}
        for folder in args.folders:
            names, confidence, correct = folder_outcomes(classifier, folder)
            sets[str(folder)] = (confidence, correct)
            for prefix in [p for p in args.by_prefix.split(",") if p]:
                chosen = np.array(base_name_starts(names, prefix), dtype=bool)
                if chosen.any():
                    sets[f"{folder} {prefix}"] = (confidence[chosen], correct[chosen])
    except (EvaluationError, ModelError, photo_pool.PhotosError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = {name: {"images": len(confidence), "thresholds": selective_accuracy(confidence, correct, THRESHOLDS)}
               for name, (confidence, correct) in sets.items()}
    for name, result in results.items():
        print(table(name, result["thresholds"], result["images"]))
    if args.json:
        store_under_key(args.json, args.key, {"model": args.model, "precision": classifier.model.info.precision,
                                              "machine": machine(), "sets": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
