"""Which onnxruntime thread layout makes `classify` fastest end to end (robust int8).

    python benchmarks/thread_layout.py [--rounds 2] [--json benchmarks/results/thread_layout.json]

Writes 5,000 28x28 PNGs, 200 listing and 200 phone-style one-megapixel JPEGs, then times the
real classify path (decode threads = one per core) with the session's intra-op threads at
onnxruntime's default, 1 and 2, with thread-pool spinning on and off; rounds interleave the
layouts so a busy machine affects all alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import classify_speed  # noqa: E402

from edge_infer import datasets, runtime  # noqa: E402
from edge_infer.evaluation.benchmark import end_to_end, machine  # noqa: E402
from edge_infer.files import write_atomic  # noqa: E402

LAYOUTS = [(None, True), (None, False), (1, True), (1, False), (2, False)]


def options_for(threads, spinning):
    default = runtime.session_options

    def options(_ignored=None):
        chosen = default(threads)
        if not spinning:
            chosen.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return chosen

    return options


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    test = datasets.load_split("test")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {name: Path(tmp) / name for name in ("png", "jpg", "phone")}
        for folder in folders.values():
            folder.mkdir()
        classify_speed.write_pngs(folders["png"], test.images[:5000])
        classify_speed.write_photos(folders["jpg"], test.images[:200])
        classify_speed.write_phone_photos(folders["phone"], test.images[:200])
        original = runtime.session_options
        try:
            for round_ in range(args.rounds):
                for threads, spinning in LAYOUTS:
                    runtime.session_options = options_for(threads, spinning)  # what OnnxModel builds its session with
                    speed = {name: round(end_to_end([str(folder)], "robust", "int8", threads=threads or None,
                                                    repeats=2)["images_per_s"])
                             for name, folder in folders.items()}
                    rows.append({"round": round_, "intra_op_threads": threads or "default", "spinning": spinning,
                                 "images_per_s": speed})
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            runtime.session_options = original
    if args.json:
        write_atomic(args.json, json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
