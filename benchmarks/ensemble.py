"""What averaging the answers of several model files would buy: each file's accuracy and the
accuracy of their mean probabilities, on the clean test set, the phone-photo pool's held-out
photographers and labelled folders (split by file-name prefix when asked).

    python benchmarks/ensemble.py -m FILE_A -m FILE_B [-m ...] [FOLDER...] [--by-prefix cds,fpi]
        [--json benchmarks/results/ensemble.json --key NAME]

An ensemble costs one inference per member, so this measures whether the accuracy is worth
it before any ensemble is exported. Folders are preprocessed once (robust, as `classify`
does) and every model answers the same arrays; an unreadable file counts as wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge_infer.classes import IMAGE_SIZE  # noqa: E402
from edge_infer.classifier import Classifier  # noqa: E402
from edge_infer.datasets import load_split, to_model_input  # noqa: E402
from edge_infer.evaluation.benchmark import store_under_key  # noqa: E402
from edge_infer.evaluation.evaluate import EvaluationError, read_labelled_folder  # noqa: E402
from edge_infer.evaluation.metrics import base_name_starts, paired_test  # noqa: E402
from edge_infer.formats import p_value_text, render_table  # noqa: E402
from edge_infer.loading import LoadPool  # noqa: E402
from edge_infer.runtime import ModelError  # noqa: E402
from train import photo_pool  # noqa: E402


def labelled_sets(folders: list[Path], prefixes: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (model inputs in [0, 1], labels); an unreadable file has label -1, so no model
    is right on it."""
    test = load_split("test")
    pool = photo_pool.load_photos(photo_pool.POOL_FILE, split="holdout")
    sets = {"clean": (to_model_input(test.images), test.labels),
            "pool hold-out": (to_model_input(pool.images), pool.labels)}
    for folder in folders:
        labelled = read_labelled_folder(folder)
        with LoadPool(os.cpu_count() or 1, "robust", processes=True) as workers:
            loaded = workers.result(workers.submit(labelled.files))
        arrays = np.stack([item.array if item.array is not None else np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
                           for item in loaded])
        labels = np.where([item.array is None for item in loaded], -1, labelled.labels)
        key = folder.name if folder.name not in sets else str(folder)  # two folders named "shifted"
        sets[key] = (arrays, labels)
        names = [item.name for item in labelled.files]
        for prefix in prefixes:
            keep = np.array(base_name_starts(names, prefix))
            if keep.any():
                sets[f"{key} {prefix}"] = (arrays[keep], labels[keep])
    return sets


def accuracies(models: list[str], sets: dict) -> tuple[dict, dict]:
    """Per model file and for their mean probabilities: accuracy on each set, and against the
    first model on the same images (images only it / only the first got right, McNemar p)."""
    answers = {m: {name: Classifier(m).classify_arrays(x) for name, (x, _) in sets.items()}
               for m in models}
    table, right = {}, {}
    for row in [*models, "mean of all"]:
        table[row], right[row] = {}, {}
        for name, (_, labels) in sets.items():
            probabilities = (np.mean([answers[m][name] for m in models], axis=0) if row == "mean of all"
                             else answers[row][name])
            right[row][name] = probabilities.argmax(1) == labels
            table[row][name] = float(right[row][name].mean()) if len(labels) else None
    first = models[0]
    against_first = {row: {name: paired_test(right[row][name], right[first][name]) for name in sets}
                     for row in table if row != first}
    return table, against_first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, help="labelled folders (labels.csv)")
    parser.add_argument("-m", "--model", action="append", required=True, help="a model file or name; two or more")
    parser.add_argument("--by-prefix", default="", help="also score these file-name prefixes apart, e.g. cds,fpi")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--key", default="current")
    args = parser.parse_args()
    if len(args.model) < 2:
        parser.error("give two or more models (-m A -m B)")
    try:
        sets = labelled_sets(args.folders, [p for p in args.by_prefix.split(",") if p])
        table, against_first = accuracies(args.model, sets)
    except (EvaluationError, ModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    accuracy_rows = [[row] + ["-" if v is None else f"{v:.2%}" for v in scores.values()] for row, scores in table.items()]
    paired_rows = [[row] + ["-" if not len(sets[name][1]) else
                            f"+{t['only_this']}/-{t['only_reference']} p={p_value_text(t['p_value'])}"
                            for name, t in tests.items()] for row, tests in against_first.items()]
    header = [""] + list(sets)
    print(render_table(accuracy_rows, header, align_right=range(1, len(header))), end="")
    print(f"\nagainst {args.model[0]}: images right only here / only there, exact McNemar p (same images)")
    print(render_table(paired_rows, header, align_right=range(1, len(header))))
    if args.json:
        images = {name: int(len(labels)) for name, (_, labels) in sets.items()}
        store_under_key(args.json, args.key, {"models": args.model, "images": images, "accuracy": table,
                                              "against_first": against_first})
    return 0


if __name__ == "__main__":
    sys.exit(main())
