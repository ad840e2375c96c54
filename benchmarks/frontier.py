"""The efficiency frontier: what each robust variant costs (multiply-accumulates, batch-1
latency) against what it gets right (clean, corruptions, drawings, shifted, real photos).

    python -m export --runs RUNS --models robust --out EXPORTED   # once per trained variant
    python benchmarks/frontier.py shipped=edge_infer/models narrow=EXPORTED ... \\
        [--folder unseen --folder unseen/shifted --folder ../shared/realdev] [--precision int8]

Each LABEL=FOLDER is an export folder (its models.json names the robust files); the first is
the reference. A variant "qualifies" as the default when it is within --tolerance points of
the reference on every accuracy measure at fewer multiply-accumulates (issue 13's rule).
Latency is one thread, batch 1, through the runtime's own call (`OnnxModel.predict`), so run
it on a quiet machine. The pool hold-out (photographers no model trained on) needs the train
package's committed photo arrays, not the photos.

Writes benchmarks/results/frontier.json, frontier.md and frontier.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_infer.classifier import Classifier  # noqa: E402
from edge_infer.datasets import to_model_input  # noqa: E402
from edge_infer.evaluation.benchmark import machine, model_speed  # noqa: E402
from edge_infer.evaluation.evaluate import evaluate  # noqa: E402
from edge_infer.files import write_atomic  # noqa: E402
from train import photo_pool  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
REALDEV_SOURCES = ("cds", "fpi")  # realdev's file-name prefixes: phone photos, packshots


def manifest_entry(folder: Path, precision: str, name: str = "robust") -> dict:
    entries = json.loads((folder / "models.json").read_text())["models"]
    for entry in entries:
        if entry["name"] == name and entry["precision"] == precision:
            return entry
    raise SystemExit(f"error: {folder}/models.json has no {name} at {precision}")


def accuracy_by_source(predictions: list[dict], sources=REALDEV_SOURCES) -> dict:
    """Accuracy per file-name prefix (realdev: cds phone photos, fpi packshots)."""
    split = {}
    for source in sources:
        rows = [p for p in predictions if Path(p["path"]).name.startswith(source)]
        if rows:
            split[source] = sum(p["predicted"] == p["label"] for p in rows) / len(rows)
    return split


def measure(label: str, folder: Path, precision: str, folders: list[str], corruption_images: int,
            holdout: photo_pool.PhotoSet, latency_runs: int) -> dict:
    entry = manifest_entry(folder, precision)
    path = str(folder / entry["file"])
    scored = evaluate([(path, precision)], folders, corruption_images=corruption_images)[0]
    accuracy = {"clean": scored["clean"]["accuracy"]}
    if "corruptions" in scored:
        accuracy["mCA"] = scored["corruptions"]["mean_corruption_accuracy"]
    for name, result in scored["folders"].items():
        robust = result["robust"]
        accuracy[Path(name).name] = robust["accuracy"]
        for source, value in accuracy_by_source(robust["predictions"]).items():
            accuracy[f"{Path(name).name}:{source}"] = value
    predicted = Classifier(path, precision).classify_arrays(to_model_input(holdout.images)).argmax(1)
    accuracy["pool hold-out"] = float((predicted == holdout.labels).mean())
    speed = model_speed(path, precision, threads=1, batch_sizes=(256,), latency_runs=latency_runs)
    return {"label": label, "folder": str(folder), "precision": precision, "params": entry["params"],
            "macs_per_image": entry["macs_per_image"], "bytes": entry["bytes"], "accuracy": accuracy,
            "latency_us": speed["latency_us"], "images_per_s_b256": speed["throughput_images_per_s"]["256"]}


def verdicts(rows: list[dict], tolerance_points: float) -> None:
    """Mark each row against the first (the reference) at the same precision."""
    reference = rows[0]
    for row in rows:
        worst = min(100 * (row["accuracy"][k] - reference["accuracy"][k]) for k in reference["accuracy"])
        row["worst_drop_points"] = -worst if worst < 0 else 0.0
        row["mac_fraction"] = row["macs_per_image"] / reference["macs_per_image"]
        row["qualifies"] = row is not reference and row["mac_fraction"] < 1 and worst >= -tolerance_points


def markdown(rows: list[dict], info: dict, tolerance_points: float) -> str:
    measures = list(rows[0]["accuracy"])
    lines = [f"Machine: {info['cpu']}, one thread; onnxruntime {info['onnxruntime']}. Accuracy in %; a variant "
             f"qualifies as the default when within {tolerance_points} points of the first row on every measure.",
             "", "| variant | precision | params | MACs | " + " | ".join(measures)
             + " | batch-1 p50 / p90 / p99 (us) | batch-256 img/s | worst drop | qualifies |",
             "|---|---|---:|---:|" + "---:|" * len(measures) + "---:|---:|---:|---|"]
    for r in rows:
        cells = " | ".join(f"{100 * r['accuracy'][m]:.1f}" if m != "clean" else f"{100 * r['accuracy'][m]:.2f}"
                           for m in measures)
        lat = r["latency_us"]
        lines.append(f"| {r['label']} | {r['precision']} | {r['params']:,} | {r['macs_per_image'] / 1e6:.1f}M "
                     f"({r['mac_fraction']:.2f}x) | {cells} | {lat['p50']:.1f} / {lat['p90']:.1f} / {lat['p99']:.1f} | "
                     f"{r['images_per_s_b256']:,.0f} | {r['worst_drop_points']:.1f} | "
                     f"{'yes' if r['qualifies'] else 'no'} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = [m for m in rows[0]["accuracy"] if m != "clean"] + ["clean"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, cost, title in ((axes[0], "macs", "multiply-accumulates per image (millions, log)"),
                            (axes[1], "latency", "batch-1 latency p50, one thread (us, log)")):
        for measure in measures:
            xs = [r["macs_per_image"] / 1e6 if cost == "macs" else r["latency_us"]["p50"] for r in rows]
            ys = [100 * r["accuracy"][measure] for r in rows]
            ax.plot(xs, ys, "o-", label=measure)
        for r in rows:
            x = r["macs_per_image"] / 1e6 if cost == "macs" else r["latency_us"]["p50"]
            ax.annotate(r["label"], (x, 100 * r["accuracy"]["clean"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(title)
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", metavar="LABEL=FOLDER", help="export folders; the first is the reference")
    parser.add_argument("--folder", action="append", default=[], help="labelled folder to score (repeatable)")
    parser.add_argument("--precision", action="append", choices=["fp32", "int8"], help="default: int8")
    parser.add_argument("--corruption-images", type=int, default=2000)
    parser.add_argument("--latency-runs", type=int, default=3000)
    parser.add_argument("--tolerance", type=float, default=0.3, help="points of accuracy a default may lose")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where frontier.json/.md/.png go")
    args = parser.parse_args(argv)
    variants = []
    for text in args.variants:
        label, sep, folder = text.partition("=")
        if not sep or not (Path(folder) / "models.json").is_file():
            parser.error(f"{text}: expected LABEL=FOLDER with a models.json (an export folder)")
        variants.append((label, Path(folder)))
    holdout = photo_pool.load_photos(photo_pool.POOL_FILE, split="holdout")
    table = {}
    for precision in args.precision or ["int8"]:
        rows = []
        for label, folder in variants:
            print(f"measuring {label} ({precision}) ...", file=sys.stderr, flush=True)
            rows.append(measure(label, folder, precision, args.folder, args.corruption_images, holdout,
                                args.latency_runs))
        verdicts(rows, args.tolerance)
        table[precision] = rows
    info = machine()
    text = "\n".join(markdown(rows, info, args.tolerance) for rows in table.values())
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "frontier.json", json.dumps({"machine": info, "folders": args.folder,
                                                         "corruption_images": args.corruption_images,
                                                         "rows": table}, indent=2) + "\n")
    write_atomic(args.out / "frontier.md", text)
    plot(next(iter(table.values())), args.out / "frontier.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
