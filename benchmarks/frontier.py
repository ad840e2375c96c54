"""The efficiency frontier: what each robust variant costs (multiply-accumulates, batch-1
latency) against what it gets right (clean, corruptions, drawings, shifted, real photos).

    python -m train --model robust --widths 16,32,64 --out runs/narrow/robust   # a variant
    python -m export --model robust --runs runs/narrow --out exported/narrow
    python benchmarks/frontier.py shipped=edge_infer/models narrow=exported/narrow ... \\
        [--folder unseen --folder unseen/shifted --folder ../shared/realdev --by-prefix cds,fpi] \\
        [--precision int8] [--data-dir D]

Each LABEL=FOLDER is an export folder (its models.json names the robust files); the first is
the reference. A variant "qualifies" as the default when it is within --tolerance points of
the reference on every accuracy measure at fewer multiply-accumulates (issue 13's rule; on the
small sets, 0.3 points is less than one image, so read it as "loses nothing anywhere").
Latency is one thread, batch 1, through the runtime's own call (`OnnxModel.predict`), so run
it on a quiet machine. The pool hold-out (photographers no model trained on) uses the train
package's committed photo arrays, not the photos.

Writes frontier.json, frontier.md and frontier.png into --out (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_infer.evaluation.benchmark import machine, model_speed  # noqa: E402
from edge_infer.evaluation.evaluate import EvaluationError, evaluate  # noqa: E402
from edge_infer.evaluation.metrics import accuracy_by_prefix  # noqa: E402
from edge_infer.files import write_atomic  # noqa: E402
from edge_infer.runtime import ModelError, load_manifest, manifest_entry  # noqa: E402
from train import photo_pool  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import pool_holdout  # noqa: E402  (its hold-out score, the same numbers)

RESULTS = ROOT / "benchmarks" / "results"
NEEDED = ("file", "params", "macs_per_image", "bytes")  # what a variant's models.json entry must say


def variant_entry(folder: Path, precision: str, name: str = "robust") -> dict:
    """The export folder's models.json entry for `name` at `precision`; ModelError if unusable."""
    entry = manifest_entry(name, precision, load_manifest(folder / "models.json"))
    missing = [key for key in NEEDED if entry is not None and key not in entry]
    if entry is None or missing:
        raise ModelError(f"{folder}/models.json: no {name} {precision} entry"
                         + (f" with {', '.join(missing)} (export it again)" if missing else ""))
    if not (folder / entry["file"]).is_file():
        raise ModelError(f"{folder / entry['file']}: no such file")
    return entry


def folder_measures(folder: str, scored: dict, prefixes: list[str]) -> dict:
    """A labelled folder's accuracy (robust preprocessing), and per file-name prefix when asked."""
    robust = scored["robust"]
    measures = {folder: robust["accuracy"]}
    names = [p["path"] for p in robust["predictions"]] + [e["path"] for e in robust["errors"]]
    right = [p["predicted"] == p["label"] for p in robust["predictions"]] + [False] * len(robust["errors"])
    for prefix, split in accuracy_by_prefix(names, right, prefixes).items():
        if split["images"]:
            measures[f"{folder}:{prefix}"] = split["accuracy"]
    return measures


def measure_all(variants: list[tuple[str, Path, dict]], precision: str, args, holdout, warn) -> list[dict]:
    """Accuracy of every variant in one evaluation (the corrupted images made once), then speed."""
    paths = [str(folder / entry["file"]) for _, folder, entry in variants]
    scored = evaluate([(path, precision) for path in paths], args.folder, data_dir=args.data_dir,
                      corruption_images=args.corruption_images, on_warning=warn)
    rows = []
    for (label, folder, entry), path, result in zip(variants, paths, scored):
        print(f"timing {label} ({precision}) ...", file=sys.stderr, flush=True)
        accuracy = {"clean": result["clean"]["accuracy"]}
        if "corruptions" in result:
            accuracy["mCA"] = result["corruptions"]["mean_corruption_accuracy"]
        for name, folder_result in result["folders"].items():
            accuracy.update(folder_measures(name, folder_result, args.by_prefix))
        accuracy["pool hold-out"] = pool_holdout.score(path, precision, holdout)["accuracy"]
        speed = model_speed(path, precision, threads=1, batch_sizes=(256,), latency_runs=args.latency_runs)
        rows.append({"label": label, "folder": str(folder), "precision": precision, "params": entry["params"],
                     "macs_per_image": entry["macs_per_image"], "bytes": entry["bytes"], "accuracy": accuracy,
                     "latency_us": speed["latency_us"], "images_per_s_b256": speed["throughput_images_per_s"]["256"]})
    return rows


def verdicts(rows: list[dict], tolerance_points: float) -> None:
    """Mark each row against the first (the reference): its worst drop in points and where, its
    share of the reference's MACs, and whether it qualifies (cheaper, within the tolerance)."""
    reference = rows[0]
    for row in rows:
        drops = {k: 100 * (reference["accuracy"][k] - row["accuracy"][k]) for k in reference["accuracy"]}
        worst = max(drops, key=drops.get)
        row["worst_drop_points"] = max(0.0, drops[worst])
        row["worst_measure"] = worst if drops[worst] > 0 else None
        row["mac_fraction"] = row["macs_per_image"] / reference["macs_per_image"]
        # a hair of slack: 100 * (0.930 - 0.927) is 0.30000000000000027 in floating point
        row["qualifies"] = row is not reference and row["mac_fraction"] < 1 and drops[worst] <= tolerance_points + 1e-9


def markdown(rows: list[dict], info: dict, tolerance_points: float) -> str:
    measures = list(rows[0]["accuracy"])
    lines = [f"Machine: {info['cpu']}, one thread; onnxruntime {info['onnxruntime']}. Accuracy in %; a variant "
             f"qualifies as the default when within {tolerance_points} points of the first row on every measure "
             "at fewer MACs.",
             "", "| variant | precision | params | MACs | " + " | ".join(measures)
             + " | batch-1 p50 / p90 / p99 (us) | batch-256 img/s | worst drop (points) | qualifies |",
             "|---|---|---:|---:|" + "---:|" * len(measures) + "---:|---:|---|---|"]
    for r in rows:
        cells = " | ".join(f"{100 * r['accuracy'][m]:.2f}" for m in measures)
        lat = r["latency_us"]
        worst = f"{r['worst_drop_points']:.2f}" + (f" ({r['worst_measure']})" if r["worst_measure"] else "")
        lines.append(f"| {r['label']} | {r['precision']} | {r['params']:,} | {r['macs_per_image'] / 1e6:.1f}M "
                     f"({r['mac_fraction']:.2f}x) | {cells} | {lat['p50']:.1f} / {lat['p90']:.1f} / {lat['p99']:.1f} | "
                     f"{r['images_per_s_b256']:,.0f} | {worst} | {'yes' if r['qualifies'] else 'no'} |")
    return "\n".join(lines) + "\n"


def plot(by_precision: dict[str, list[dict]], path: Path) -> None:
    """Accuracy against MACs and against latency, one line per measure and precision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    costs = ((lambda r: r["macs_per_image"] / 1e6, "multiply-accumulates per image (millions, log)"),
             (lambda r: r["latency_us"]["p50"], "batch-1 latency p50, one thread (us, log)"))
    for ax, (cost, title) in zip(axes, costs):
        for precision, rows in by_precision.items():
            ordered = sorted(rows, key=cost)
            for name in ordered[0]["accuracy"]:
                ax.plot([cost(r) for r in ordered], [100 * r["accuracy"][name] for r in ordered], "o-",
                        label=f"{name} ({precision})")
            for r in ordered:
                ax.annotate(r["label"], (cost(r), 100 * r["accuracy"]["clean"]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(title)
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_variants(texts: list[str], parser: argparse.ArgumentParser) -> list[tuple[str, Path]]:
    variants = []
    for text in texts:
        label, sep, folder = text.partition("=")
        if not sep or not label or not folder:
            parser.error(f"{text}: expected LABEL=FOLDER")
        variants.append((label, Path(folder)))
    labels = [label for label, _ in variants]
    if len(set(labels)) != len(labels):
        parser.error("each variant needs its own label")
    return variants


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", metavar="LABEL=FOLDER", help="export folders; the first is the reference")
    parser.add_argument("--folder", action="append", default=[], help="labelled folder to score (repeatable)")
    parser.add_argument("--by-prefix", type=lambda text: [p for p in text.split(",") if p], default=[],
                        help="also score each folder's files by these comma-separated name prefixes (realdev: cds,fpi)")
    parser.add_argument("--precision", action="append", choices=["fp32", "int8"], help="repeatable (default: int8)")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST files (default: the usual places)")
    parser.add_argument("--corruption-images", type=int, default=2000, help="0 skips the corruption suite")
    parser.add_argument("--latency-runs", type=int, default=3000)
    parser.add_argument("--tolerance", type=float, default=0.3, help="points of accuracy a new default may lose")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where frontier.json/.md/.png go")
    args = parser.parse_args(argv)
    if args.latency_runs < 1 or args.corruption_images < 0 or args.tolerance < 0:
        parser.error("--latency-runs must be at least 1, --corruption-images and --tolerance not negative")
    named = parse_variants(args.variants, parser)
    precisions = args.precision or ["int8"]

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    try:
        # every variant's files are checked before minutes of measuring start
        variants = {p: [(label, folder, variant_entry(folder, p)) for label, folder in named] for p in precisions}
        holdout = photo_pool.load_photos(photo_pool.POOL_FILE, split="holdout")
        by_precision = {}
        for precision in precisions:
            rows = measure_all(variants[precision], precision, args, holdout, warn)
            verdicts(rows, args.tolerance)
            by_precision[precision] = rows
        info = machine()
        text = "\n".join(markdown(rows, info, args.tolerance) for rows in by_precision.values())
        args.out.mkdir(parents=True, exist_ok=True)
        settings = {"folders": args.folder, "by_prefix": args.by_prefix, "corruption_images": args.corruption_images,
                    "latency_runs": args.latency_runs, "tolerance_points": args.tolerance}
        write_atomic(args.out / "frontier.json", json.dumps({"machine": info, "settings": settings,
                                                             "by_precision": by_precision}, indent=2) + "\n")
        write_atomic(args.out / "frontier.md", text)
        plot(by_precision, args.out / "frontier.png")
    except (EvaluationError, ModelError, photo_pool.PhotosError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
