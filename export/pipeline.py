"""One trained run to verified fp32 and int8 ONNX files, a manifest entry each, and a model card."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_infer.files import write_atomic
from edge_infer.evaluation.metrics import accuracy
from edge_infer.preprocess import PREPROCESS_VERSION
from edge_infer.runtime import sha256_file
from train.provenance import git_commit
from train.registry import MODELS, NAMES

from . import card, macs, onnx_export, ort_format, quantize, verify


@dataclass
class ExportData:
    test_images: np.ndarray  # (N, 28, 28, 1) float32 in [0, 1]
    test_labels: np.ndarray
    calibration: np.ndarray  # (M, 28, 28, 1) float32, already preprocessed as at inference


def _architecture(model) -> str:
    """One line per layer: name, type, output shape, parameters."""
    lines = [f"{'layer':28s} {'type':22s} {'output shape':20s} {'params':>8s}"]
    for layer in model.layers:
        shape = tuple(getattr(getattr(layer, "output", None), "shape", ()) or ())
        lines.append(f"{layer.name:28s} {type(layer).__name__:22s} {str(shape):20s} {layer.count_params():8,d}")
    return "\n".join(lines)


def export_run(name: str, run_dir: Path, out_dir: Path, data: ExportData, quantization: str = "static",
               limits: verify.Thresholds | None = None, parity_images: int = 1000,
               summary: str = "", write: bool = True) -> tuple[list[verify.Report], list[dict]]:
    """Convert, quantize, verify; write files only when every check passes.

    Returns the verification reports and the manifest entries written. Raises
    VerificationError (after the reports are complete) when a check fails.
    """
    import keras

    limits = limits or verify.Thresholds()
    run = json.loads((run_dir / "run.json").read_text())
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    commit = git_commit()
    params = int(model.count_params())
    common = onnx_export.base_metadata(name, params, run, "fp32", PREPROCESS_VERSION)
    common.update({"export_commit": commit, "test_images": int(len(data.test_labels))})

    fp32, fp32_report, fp32_probs = _verified_fp32(name, model, data, limits, parity_images)
    fp32_accuracy = accuracy(fp32_probs, data.test_labels)
    onnx_export.set_metadata(fp32, {**common, "test_accuracy": fp32_accuracy})
    int8, int8_report, int8_probs = _verified_int8(name, fp32, fp32_probs, data, quantization, limits)
    int8_accuracy = accuracy(int8_probs, data.test_labels)
    onnx_export.set_metadata(int8, {**common, "precision": "int8", "quantization": quantization,
                                    "calibration_images": int(len(data.calibration)),
                                    "test_accuracy": int8_accuracy})
    reports = [fp32_report, int8_report]
    if not all(r.passed for r in reports):
        raise verify.VerificationError("\n".join(r.table() for r in reports))
    if not write:
        return reports, []
    graphs = [(fp32, "fp32", fp32_accuracy), (int8, "int8", int8_accuracy)]
    entries = _write_models(name, graphs, out_dir, quantization, params, commit, data.test_images[:256])
    cards = out_dir / "cards"
    cards.mkdir(exist_ok=True)
    write_atomic(cards / f"{name}.md", card.model_card(name, summary or run.get("summary", name), run, entries,
                                                        entries[0]["macs_per_image"], _architecture(model)))
    return reports, entries


def _verified_fp32(name: str, model, data: ExportData, limits: verify.Thresholds, parity_images: int):
    """The float graph, checked against Keras on the first test images; its test-set probabilities."""
    fp32 = onnx_export.keras_to_onnx(model)
    report = verify.Report(f"{name} fp32")
    verify.check_structure(fp32, report)
    parity = data.test_images[:parity_images]
    verify.check_fp32(fp32, model.predict(parity, batch_size=500, verbose=0), parity, report, limits)
    return fp32, report, verify.run(fp32, data.test_images)


def _verified_int8(name: str, fp32, fp32_probs: np.ndarray, data: ExportData, quantization: str,
                   limits: verify.Thresholds):
    """The quantized graph, checked for agreement with the float one and for its accuracy drop."""
    entry = MODELS.get(name)
    int8 = quantize.quantize(fp32, data.calibration, quantization,
                             first_stage_kept=bool(entry and entry.float_first_stage))
    report = verify.Report(f"{name} int8 ({quantization})")
    verify.check_structure(int8, report)
    int8_probs = verify.run(int8, data.test_images)
    verify.check_int8(fp32_probs, int8_probs, data.test_labels, report, limits)
    return int8, report, int8_probs


def _write_models(name: str, graphs: list, out_dir: Path, quantization: str, params: int, commit: str,
                  check_images: np.ndarray) -> list[dict]:
    """Save each (graph, precision, accuracy) as ONNX and as ORT format (checked against the ONNX
    file on `check_images`), record both in models.json, and refresh the operator config."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mac_count = macs.count_macs(graphs[0][0])
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    entries = []
    for proto, precision, test_accuracy in graphs:
        filename = f"{name}.onnx" if precision == "fp32" else f"{name}.{precision}.onnx"
        quantize.save_model(proto, out_dir / filename)
        entries.append({
            "name": name, "file": filename, "precision": precision,
            "quantization": quantization if precision != "fp32" else None,
            "sha256": sha256_file(out_dir / filename), "bytes": (out_dir / filename).stat().st_size,
            "params": params, "macs_per_image": mac_count, "test_accuracy": round(test_accuracy, 4),
            "created": created, "export_commit": commit,
            **ort_format.record(out_dir / filename, check_images),
        })
    update_manifest(out_dir / "models.json", entries)
    ort_format.write_config(out_dir)
    return entries


def update_manifest(path: Path, entries: list[dict], section: str = "models",
                    key: tuple[str, ...] = ("name", "precision")) -> None:
    """Put `entries` into models.json's `section`, replacing those with the same `key` fields
    (the classifiers by name and precision; "end_to_end" files by name alone)."""
    manifest = json.loads(path.read_text()) if path.is_file() else {"models": []}
    replaced = {tuple(e[k] for k in key) for e in entries}
    kept = [e for e in manifest.get(section, []) if tuple(e[k] for k in key) not in replaced]
    merged = sorted(kept + entries, key=lambda e: (NAMES.index(e["name"]) if e["name"] in NAMES else 99,
                                                   e["name"], e["precision"]))
    manifest[section] = merged  # other keys (the preferred precisions, other sections) stay as they were
    write_atomic(path, json.dumps(manifest, indent=2) + "\n")
