"""How many labelled phone photos buy how many points: accuracy against the photos trained on.

Each point is a robust model trained at the same budget with a share of the pool's
photographers (`python -m train --model robust --epochs 8 --corruption-mix 0
--photos-fraction F`, exported with `python -m export --model robust --runs R --out D`):

    python benchmarks/learning_curve.py --point 0=none.int8.onnx --point 2013=all.int8.onnx ... \\
        [--folder ../shared/realdev --prefix cds] [--json F] [--plot F.png]

Scores each model on the pool's held-out photographers (never trained on) and, given a
labelled folder, on its files whose names start with `--prefix` (realdev's phone photos).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_infer.classifier import Classifier  # noqa: E402
from edge_infer.evaluation.evaluate import evaluate_folder, read_labelled_folder  # noqa: E402
from edge_infer.evaluation.metrics import accuracy_by_prefix  # noqa: E402
from edge_infer.files import write_atomic  # noqa: E402
from train import photo_pool  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import pool_holdout  # noqa: E402  (its hold-out score, the same numbers)


def score(model: str, holdout: photo_pool.PhotoSet, folder, prefix: str) -> dict:
    result = {"pool_holdout": pool_holdout.score(model, None, holdout)["accuracy"]}
    if folder is not None:
        scored = evaluate_folder(Classifier(model), folder, "robust")["predictions"]
        split = accuracy_by_prefix([p["path"] for p in scored], [p["predicted"] == p["label"] for p in scored], [prefix])
        result[f"folder_{prefix or 'all'}"] = split[prefix]["accuracy"]
    return result


def plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    photos = [p["photos"] for p in points]
    for key in [k for k in points[0] if k not in ("photos", "model")]:
        ax.plot(photos, [100 * p[key] for p in points], marker="o", label=key.replace("_", " "))
    ax.set_xlabel("labelled phone photos in training")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("What real photos buy (robust, 8 epochs each)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--point", action="append", required=True, metavar="PHOTOS=MODEL",
                        help="photos trained on = the model file (repeatable)")
    parser.add_argument("--folder", type=Path, help="a labelled folder to score too")
    parser.add_argument("--prefix", default="", help="only the folder's files whose names start with this")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    holdout = photo_pool.load_photos(photo_pool.POOL_FILE, split="holdout")
    folder = read_labelled_folder(args.folder) if args.folder else None
    points = []
    for text in args.point:
        photos, _, model = text.partition("=")
        points.append({"photos": int(photos), "model": model, **score(model, holdout, folder, args.prefix)})
        print(json.dumps(points[-1]), flush=True)
    points.sort(key=lambda p: p["photos"])
    if args.json:
        write_atomic(args.json, json.dumps({"holdout_photos": int(len(holdout.labels)), "points": points},
                                           indent=2) + "\n")
    if args.plot:
        plot(points, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
