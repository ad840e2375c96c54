"""Sort the wrong answers on labelled folders into kinds (edge_infer.failures), with a contact sheet.

    python benchmarks/failures.py FOLDER... [--model robust] [--precision int8]
        [--json benchmarks/results/failures.json --key NAME] [--sheet /tmp/failures.png]
        [--by-prefix cds,fpi] [--counts-only]

`--by-prefix` also splits the accuracy by the first part of each file name (realdev names its
files <source>_<name>). Keep the contact sheet of a set you may not redistribute (realdev)
outside the repository: it shows the photos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from edge_infer.evaluation import failures  # noqa: E402
from edge_infer.evaluation.benchmark import store_under_key  # noqa: E402
from edge_infer.classifier import Classifier  # noqa: E402
from edge_infer.loading import load_and_preprocess  # noqa: E402
from edge_infer.evaluation.evaluate import read_labelled_folder  # noqa: E402
from edge_infer.evaluation.metrics import accuracy_by_prefix  # noqa: E402
from edge_infer.files import open_image  # noqa: E402


def breakdown(folder: Path, classifier: Classifier, prefixes: list[str], sheet_rows: list) -> dict:
    labelled = read_labelled_folder(folder)
    found, outcomes = [], []
    for item, truth in zip(labelled.files, labelled.labels):
        loaded = load_and_preprocess(item, "robust")
        if loaded.array is None:
            print(f"{item.name}: {loaded.error}", file=sys.stderr)
            outcomes.append(False)
            continue
        probabilities = classifier.classify_arrays(loaded.array[None])[0]
        answer = int(probabilities.argmax())
        outcomes.append(answer == truth)
        if answer == truth:
            continue
        with open_image(item.path) as image:
            image.load()
            kinds = failures.failure_kinds(image, loaded.array, int(truth), probabilities)
            failure = failures.Failure(item.name, int(truth), answer, kinds)
            found.append(failure)
            sheet_rows.append((image.copy(), loaded.array, failure))
    result = failures.summarise(found, len(labelled.files))
    result["accuracy"] = sum(outcomes) / max(1, len(labelled.files))
    result["by_prefix"] = accuracy_by_prefix([item.name for item in labelled.files], outcomes, prefixes)
    result["wrong_files"] = [{"path": f.path, "truth": f.truth, "answer": f.answer, "kinds": f.kinds} for f in found]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--model", default="robust")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--json", type=Path, help="merge the result into this JSON file under --key")
    parser.add_argument("--key", default="current")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet of the wrong answers (PNG)")
    parser.add_argument("--by-prefix", default="", help="comma-separated file-name prefixes to score apart")
    parser.add_argument("--counts-only", action="store_true",
                        help="leave the per-file list out of --json (for sets whose names are not ours to publish)")
    args = parser.parse_args()
    classifier = Classifier(args.model, args.precision)
    prefixes = [p for p in args.by_prefix.split(",") if p]
    rows: list = []
    results = {str(folder): breakdown(folder, classifier, prefixes, rows) for folder in args.folders}
    for folder, result in results.items():
        print(f"{folder}: {result['wrong']} wrong of {result['images']} ({result['accuracy']:.1%} right)")
        for prefix, part in result["by_prefix"].items():
            if part["images"]:
                print(f"  {prefix}: {part['accuracy']:.1%} of {part['images']}")
        print("  primary kind: " + ", ".join(f"{k} {v}" for k, v in result["primary"].items() if v))
        print("  any kind:     " + ", ".join(f"{k} {v}" for k, v in result["any_kind"].items() if v))
        print("  confusions:   " + ", ".join(f"{k} {v}" for k, v in list(result["confusions"].items())[:8]))
    if args.sheet:
        failures.contact_sheet(rows).save(args.sheet)
        print(f"wrote {args.sheet}")
    if args.json:
        if args.counts_only:
            for result in results.values():
                result.pop("wrong_files")
        store_under_key(args.json, args.key, {"model": args.model, "precision": args.precision, "folders": results})
        print(f"wrote {args.json} [{args.key}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
