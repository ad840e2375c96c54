"""Batch-1 latency: `session.run` against the bound buffers `OnnxModel.predict` uses for one image.

    python benchmarks/iobinding.py [--runs 3000] [--json benchmarks/results/iobinding.json]

One thread, every shipped model at both precisions, the two call paths interleaved three times
so a busy machine affects both alike; p50 and p90 in microseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge_infer.evaluation.benchmark import machine, percentiles, time_calls  # noqa: E402
from edge_infer.files import write_atomic  # noqa: E402
from edge_infer.runtime import PRECISIONS, OnnxModel, run_batched, shipped_names  # noqa: E402


def measure(name: str, precision: str, runs: int, rounds: int = 3) -> dict:
    model = OnnxModel(name, precision, threads=1)
    one = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    paths = {"session.run": lambda: run_batched(model.session, one, 1, model.input_name, model.output_name),
             "bound buffers": lambda: model.predict(one)}
    samples = {label: [] for label in paths}
    for _ in range(rounds):
        for label, call in paths.items():
            samples[label] += time_calls(call, runs, warmup=200)
    return {"model": name, "precision": precision,
            **{label: {key: round(value, 2) for key, value in percentiles(values).items() if key in ("p50", "p90")}
               for label, values in samples.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [measure(name, precision, args.runs) for name in shipped_names() for precision in PRECISIONS]
    for row in rows:
        plain, bound = row["session.run"]["p50"], row["bound buffers"]["p50"]
        print(f"{row['model']:8} {row['precision']:5} session.run p50 {plain:7.1f} us   bound {bound:7.1f} us   "
              f"saved {plain - bound:5.1f} us ({(plain - bound) / plain:+.0%})")
    if args.json:
        write_atomic(args.json, json.dumps({"machine": machine(), "runs": args.runs, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
