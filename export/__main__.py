"""python -m export --model NAME|all [--runs runs] [--out edge_infer/models] [--quantization static]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from edge_infer.datasets import DatasetError
from train.registry import DEFAULT_MODEL, NAMES

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "edge_infer" / "models"


def main(argv=None) -> int:
    from . import verify

    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("--model", required=True, choices=[*NAMES, "all"])
    parser.add_argument("--runs", default="runs", help="folder holding runs/<name>/model.keras")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--quantization", choices=["static", "dynamic"], default="static")
    parser.add_argument("--data-dir")
    parser.add_argument("--calibration-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-only", action="store_true", help="convert and verify, write nothing")
    defaults = verify.Thresholds()
    parser.add_argument("--max-abs-diff", type=float, default=defaults.max_abs_diff)
    parser.add_argument("--min-int8-agreement", type=float, default=defaults.int8_agreement)
    parser.add_argument("--max-int8-drop", type=float, default=defaults.int8_max_drop,
                        help="as a fraction (0.005 = half a point)")
    args = parser.parse_args(argv)

    from edge_infer import datasets

    from . import quantize
    from .pipeline import ExportData, export_run

    try:
        folder = datasets.ensure_data_dir(args.data_dir)
        test = datasets.load_split("test", folder)
        train = datasets.load_split("train", folder)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = ExportData(
        test_images=datasets.to_model_input(test.images),
        test_labels=test.labels.astype(np.int64),
        calibration=quantize.calibration_images(train.images, args.calibration_size, args.seed),
    )
    limits = verify.Thresholds(max_abs_diff=args.max_abs_diff, int8_agreement=args.min_int8_agreement,
                               int8_max_drop=args.max_int8_drop)
    names = NAMES if args.model == "all" else (args.model,)
    status = 0
    for name in names:
        run_dir = Path(args.runs) / name
        if not (run_dir / "model.keras").is_file():
            print(f"error: {run_dir / 'model.keras'} not found; train it first: python -m train --model {name}",
                  file=sys.stderr)
            status = 2
            continue
        try:
            reports, entries = export_run(name, run_dir, Path(args.out), data, args.quantization, limits,
                                          write=not args.check_only)
        except verify.VerificationError as exc:
            print(f"{exc}\nerror: {name}: verification failed; nothing written", file=sys.stderr)
            status = 1
            continue
        for report in reports:
            print(report.table())
        for entry in entries:
            print(f"  wrote {entry['file']}: {entry['bytes']:,} bytes, test accuracy {entry['test_accuracy']:.4f}")
        # (only for the shipped folder: the end-to-end export reads the classifier the runtime ships)
        if name == DEFAULT_MODEL and not args.check_only and Path(args.out).resolve() == DEFAULT_OUT.resolve():
            status = max(status, _end_to_end(name, Path(args.out)))
    return status


def _end_to_end(name: str, out: Path) -> int:
    """The default model also as one file with its preprocessing inside (export.e2e)."""
    from . import e2e

    try:
        record, parity = e2e.export_e2e(name, None, out)
    except e2e.ParityError as exc:
        print(f"error: {exc}; {e2e.e2e_filename(name)} not written", file=sys.stderr)
        return 1
    print(f"  wrote {record['file']}: {record['bytes']:,} bytes, top-1 as classify on "
          f"{parity.agreeing}/{parity.images} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
