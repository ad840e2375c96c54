"""Pick each shipped model's default precision from a benchmark run, and record it in models.json.

    edge-infer benchmark --format json -o benchmarks/results/benchmark.json
    python benchmarks/choose_precision.py benchmarks/results/benchmark.json [--write]

The faster precision at the largest batch measured wins, among those within 0.2 points of the
model's best test accuracy (`edge_infer.evaluation.benchmark.choose_precisions`). `--write`
stores the choice as "preferred_precision" in edge_infer/models/models.json, with the CPU it
was measured on; `classify`, `evaluate` and `info` then use it unless `--precision` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_infer.evaluation.benchmark import choose_precisions  # noqa: E402
from edge_infer.files import write_atomic  # noqa: E402
from edge_infer.runtime import MODELS_DIR  # noqa: E402


def record(manifest_path: Path, choices: dict[str, dict], measured_on: str, source: str) -> None:
    manifest = json.loads(manifest_path.read_text())
    manifest["preferred_precision"] = {name: choice["precision"] for name, choice in choices.items()}
    manifest["preferred_precision_measured"] = {"cpu": measured_on, "benchmark": source}
    write_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", type=Path, help="JSON from `edge-infer benchmark --format json`")
    parser.add_argument("--write", action="store_true", help="record the choice in models.json")
    parser.add_argument("--manifest", type=Path, default=MODELS_DIR / "models.json")
    args = parser.parse_args(argv)
    result = json.loads(args.benchmark.read_text())
    choices = choose_precisions(result["models"])
    for name, choice in choices.items():
        speeds = ", ".join(f"{p} {choice['images_per_s'][p]:,} img/s, {choice['latency_p50_us'][p]} us, "
                           f"acc {choice['test_accuracy'][p]:.4f}" for p in choice["images_per_s"])
        print(f"{name}: {choice['precision']}  ({speeds})")
    if args.write:
        record(args.manifest, choices, result["machine"]["cpu"], str(args.benchmark))
        print(f"wrote preferred precisions to {args.manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
