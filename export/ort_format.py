"""ORT format copies of the exported models, for reduced-size onnxruntime builds on devices.

A minimal onnxruntime build (`--minimal_build --include_ops_by_config`) loads only `.ort` files
and carries only the kernels a config file lists; `required_operators.config` (written beside
the models) is that list for every shipped model, with the types each operator needs. The
conversion follows onnxruntime's own (`onnxruntime.tools.convert_onnx_models_to_ort`) with the
"Fixed" optimisation style (graph optimisations baked in, as advised for the CPU execution
provider) and ARM as the target, where phones and Raspberry Pis are; the files load and give
the same answers on x86 too (checked below and in the tests).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_infer.runtime import OnnxModel, optimizers_to_disable, session_options, sha256_file

CONFIG_FILE = "required_operators.config"
MAX_ABS_DIFF = 1e-5


class OrtFormatError(Exception):
    """An .ort copy does not reproduce its ONNX model."""


def convert(onnx_path: Path, check_images: np.ndarray) -> Path:
    """Write `<stem>.ort` beside `onnx_path` once it gives the ONNX model's outputs on `check_images`.

    What onnxruntime's converter does for the "Fixed" style and an ARM target (all graph
    optimisations but the x86-only NCHWc layout, int8 QDQ kept as signed where ARM prefers it),
    plus the optimisers the model itself asks to leave out (`edge_infer.runtime.optimizers_to_disable`):
    the converter has no option for those, and an .ort file keeps the graph as optimised here."""
    target = onnx_path.with_suffix(".ort")
    with tempfile.TemporaryDirectory(dir=onnx_path.parent) as scratch:  # beside it: the rename stays atomic
        converted = Path(scratch) / target.name
        options = session_options()
        options.optimized_model_filepath = str(converted)
        options.add_session_config_entry("session.save_model_format", "ORT")
        options.add_session_config_entry("session.qdqisint8allowed", "1")
        asked = optimizers_to_disable(str(onnx_path))
        ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"],
                             disabled_optimizers=["NchwcTransformer", *asked])
        difference = _max_difference(onnx_path, converted, check_images)
        if difference > MAX_ABS_DIFF:
            raise OrtFormatError(f"{target.name}: outputs differ from {onnx_path.name} by {difference:.2e}")
        converted.replace(target)  # same file system: an atomic rename
    return target


def _max_difference(onnx_path: Path, ort_path: Path, images: np.ndarray) -> float:
    onnx_out, ort_out = (OnnxModel(str(path), threads=1).predict_batched(images) for path in (onnx_path, ort_path))
    return float(np.abs(onnx_out - ort_out).max())


def record(onnx_path: Path, check_images: np.ndarray) -> dict:
    """Convert (checked as `convert` does) and return what models.json records of the copy."""
    ort_file = convert(onnx_path, check_images)
    return {"ort_file": ort_file.name, "ort_sha256": sha256_file(ort_file)}


def write_config(models_dir: Path) -> Path:
    """The operators and types every .ort file in `models_dir` needs, as the minimal build reads them."""
    from onnxruntime.tools.convert_onnx_models_to_ort import create_config_from_models

    names = sorted(path.name for path in models_dir.glob("*.ort"))
    with tempfile.TemporaryDirectory(dir=models_dir) as scratch, contextlib.chdir(models_dir):
        partial = Path(scratch) / CONFIG_FILE
        create_config_from_models([Path(name) for name in names], partial, enable_type_reduction=True)
        partial.replace(models_dir / CONFIG_FILE)  # relative names: the config does not record our paths
    return models_dir / CONFIG_FILE


def convert_shipped(models_dir: Path, check_images: np.ndarray) -> list[dict]:
    """(Re)write the .ort copy of every model in `models_dir`'s models.json, record each in the
    manifest (ort_file, ort_sha256) and refresh the operator config; returns the entries."""
    import json

    from edge_infer.files import write_atomic

    manifest_path = models_dir / "models.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["models"]:
        entry.update(record(models_dir / entry["file"], check_images))
    write_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    write_config(models_dir)
    return manifest["models"]


def main(argv=None) -> int:
    """python -m export.ort_format [MODELS_DIR]: ORT format copies of the models already exported."""
    import argparse
    import sys

    from edge_infer import datasets
    from edge_infer.runtime import MODELS_DIR

    parser = argparse.ArgumentParser(prog="python -m export.ort_format", description=main.__doc__)
    parser.add_argument("models_dir", nargs="?", type=Path, default=MODELS_DIR)
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST files (for the parity check)")
    args = parser.parse_args(argv)
    try:
        test = datasets.load_split("test", datasets.ensure_data_dir(args.data_dir))
    except datasets.DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        entries = convert_shipped(args.models_dir, datasets.to_model_input(test.images[:256]))
    except OrtFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for entry in entries:
        print(f"wrote {entry['ort_file']} ({(args.models_dir / entry['ort_file']).stat().st_size:,} bytes)")
    print(f"wrote {args.models_dir / CONFIG_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
