"""Mean corruption accuracy split into the kinds corruption training imitates and the rest.

    python benchmarks/corruption_split.py benchmarks/results/evaluation.json [--json OUT --key K]

Reads the JSON `edge-infer evaluate --format json` writes. A model trained with
`corruption_mix` > 0 has seen the kinds in `train.registry.CORRUPTION_MIX_KINDS` (its own
implementation, not the suite's), so its mean over the other kinds is the fairer comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_infer.evaluation.benchmark import store_under_key  # noqa: E402
from train.registry import CORRUPTION_MIX_KINDS  # noqa: E402


def split(mean_per_corruption: dict[str, float]) -> dict[str, float]:
    imitated = [v for k, v in mean_per_corruption.items() if k in CORRUPTION_MIX_KINDS]
    others = [v for k, v in mean_per_corruption.items() if k not in CORRUPTION_MIX_KINDS]
    return {
        "all": sum(mean_per_corruption.values()) / len(mean_per_corruption),
        "imitated_kinds": sum(imitated) / len(imitated),
        "other_kinds": sum(others) / len(others),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluation", type=Path)
    parser.add_argument("--json", type=Path, help="merge the table into this JSON file")
    parser.add_argument("--key", default="latest", help="key to store it under in --json")
    args = parser.parse_args(argv)
    rows = []
    for result in json.loads(args.evaluation.read_text())["results"]:
        for field in ("corruptions", "corruptions_through_preprocessing"):
            if result.get(field):
                rows.append({"model": result["model"], "precision": result["precision"], "set": field,
                             **split(result[field]["mean_per_corruption"])})
    print(f"imitated kinds: {', '.join(CORRUPTION_MIX_KINDS)}")
    print(f"{'model':8} {'precision':9} {'set':25} {'all':>6} {'imitated':>9} {'others':>7}")
    for row in rows:
        print(f"{row['model']:8} {row['precision']:9} {row['set']:25} {row['all']:6.1%} "
              f"{row['imitated_kinds']:9.1%} {row['other_kinds']:7.1%}")
    if args.json:
        store_under_key(args.json, args.key, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
