"""Should a candidate model replace the default? The team's rule, applied to a paired comparison
that `benchmarks/ensemble.py --json` wrote (its first model is the default, the reference).

    python benchmarks/decide.py benchmarks/results/ensemble.json KEY [--candidate MODEL]
        [--gain SET ...] [--guard SET ...]

The rule (set in session 23, before v13 was measured; earlier sessions asked only "no measure
worse at p < 0.05", which never asked for a gain and, over seven measures, could find a loss by
luck alone about one time in six):
1. gain: on the gain sets together (by default the photos the product is for, realdev's phone
   photos and the pool's held-out photographers: 536 photos, disjoint), the candidate is right
   on more images than the default, exact McNemar p < 0.05 on the summed counts;
2. guard: on no guard set is it worse with a Holm-adjusted p < 0.05 (Holm across the guard
   sets). `shifted` (100) is not a guard: `listing2000` is the same kind of photo, 20 times as
   many (`python unseen/build.py --shifted-only 200 --seed 1 --out DIR`).
Exit status: 0 ships, 1 does not, 2 usage error (unknown key, model or set).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_infer.evaluation.metrics import holm_adjusted, pooled_paired_test  # noqa: E402
from edge_infer.formats import p_value_text, render_table  # noqa: E402

GAIN = ("realdev cds", "pool hold-out")
GUARD = ("clean", "listing2000", "pool hold-out", "realdev cds", "realdev fpi", "unseen")
LEVEL = 0.05


def decision(paired: dict[str, dict], gain=GAIN, guard=GUARD, level: float = LEVEL) -> dict:
    """`paired`: set name -> a paired test of candidate vs default (only_this, only_reference,
    p_value). Returns the gain test, each guard set's test with its Holm-adjusted p and whether
    it is a loss, and whether the candidate ships."""
    gain, guard = tuple(dict.fromkeys(gain)), tuple(dict.fromkeys(guard))  # a set named twice counts once
    missing = [name for name in dict.fromkeys((*gain, *guard)) if name not in paired]
    if missing:
        raise ValueError(f"no paired result for {', '.join(missing)} (have: {', '.join(paired)})")
    gained = pooled_paired_test([paired[name] for name in gain])
    adjusted = holm_adjusted({name: paired[name]["p_value"] for name in guard})
    guards = {name: {**paired[name], "holm_p": adjusted[name],
                     "loss": paired[name]["only_reference"] > paired[name]["only_this"] and adjusted[name] < level}
              for name in guard}
    better = gained["only_this"] > gained["only_reference"] and gained["p_value"] < level
    return {"gain_sets": list(gain), "gain": gained, "better": better, "guards": guards,
            "ships": better and not any(g["loss"] for g in guards.values())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a JSON file written by benchmarks/ensemble.py --json")
    parser.add_argument("key")
    parser.add_argument("--candidate", help="a model of that comparison (default: the second)")
    parser.add_argument("--gain", action="append", help=f"a set the candidate must win on (default: {', '.join(GAIN)})")
    parser.add_argument("--guard", action="append", help=f"a set it must not lose on (default: {', '.join(GUARD)})")
    args = parser.parse_args(argv)
    try:
        comparison = json.loads(args.results.read_text())[args.key]
        if not args.candidate and len(comparison["models"]) < 2:
            raise ValueError(f"[{args.key}] compares no candidate with {comparison['models'][0]}")
        candidate = args.candidate or comparison["models"][1]
        result = decision(comparison["against_first"][candidate], args.gain or GAIN, args.guard or GUARD)
    except (OSError, ValueError) as exc:
        print(f"error: {args.results}: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"error: {args.results} [{args.key}]: {str(exc).strip(chr(39))} not found", file=sys.stderr)
        return 2
    reference = comparison["models"][0]
    gain = result["gain"]
    print(f"{candidate} against {reference}")
    print(f"gain on {' + '.join(result['gain_sets'])}: +{gain['only_this']}/-{gain['only_reference']}, "
          f"p {p_value_text(gain['p_value'])}: {'better' if result['better'] else 'not shown better'}")
    rows = [[name, f"+{g['only_this']}/-{g['only_reference']}", p_value_text(g["p_value"]), p_value_text(g["holm_p"]),
             "LOSS" if g["loss"] else ""] for name, g in result["guards"].items()]
    print(render_table(rows, ["guard", "right only here / there", "p", "Holm p", ""], align_right=(1, 2, 3)), end="")
    print("ships" if result["ships"] else "does not ship")
    return 0 if result["ships"] else 1


if __name__ == "__main__":
    sys.exit(main())
