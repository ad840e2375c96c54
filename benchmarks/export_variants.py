"""What each export choice does to onnxruntime speed and int8 agreement (needs the train extra).

For each trained model, builds graph variants from runs/<name>/model.keras and measures, on one
thread: batch-1 latency (median of many runs) and batch-256 throughput, with onnxruntime's
full graph optimisation (ENABLE_ALL) and with the layout transformers off (ENABLE_EXTENDED).

Variants:
- fp32 raw: tf2onnx's graph as converted (flatten transpose, unfolded post-ReLU batch-norm)
- fp32 clean: our clean-ups (transpose folded into the dense weights, batch-norm folded)
- int8 QDQ u8 (the default), int8 QDQ s8 symmetric, int8 QOperator u8, int8 QDQ without the
  float head, int8 QDQ with the first stage (convolution, ReLU, pool) also float (shipped for
  the models whose registry entry says float_first_stage; run without QDQ propagation, as the
  runtime does), int8 QDQ from the raw graph, int8 dynamic.

    python benchmarks/export_variants.py [--models model1 model2 model3 robust]

Writes benchmarks/results/export_variants.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnxruntime.quantization import QuantFormat, QuantType  # noqa: E402

from edge_infer import datasets  # noqa: E402
from edge_infer.evaluation.benchmark import machine, throughput, time_calls  # noqa: E402
from edge_infer.evaluation.metrics import accuracy  # noqa: E402
from edge_infer.runtime import optimizers_to_disable  # noqa: E402
from export import verify  # noqa: E402
from export.onnx_export import keras_to_onnx  # noqa: E402
from export.quantize import calibration_images, quantize  # noqa: E402
from train.registry import NAMES  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LEVELS = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}


def measure(proto, level, images: np.ndarray, runs: int = 2000) -> dict:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    options.log_severity_level = 3
    serialized = proto.SerializeToString()
    asked = optimizers_to_disable(serialized)
    session = ort.InferenceSession(serialized, options, providers=["CPUExecutionProvider"], disabled_optimizers=asked)
    name = session.get_inputs()[0].name
    one, batch = images[:1], images[:256]
    samples = time_calls(lambda: session.run(None, {name: one}), runs, warmup=50)
    return {"p50_us": float(np.median(samples) * 1e6),
            "b256_images_per_s": throughput(lambda: session.run(None, {name: batch}), 256)}


def variants(model, calibration):
    raw = keras_to_onnx(model, clean_up=False)
    clean = keras_to_onnx(model)
    yield "fp32 raw (tf2onnx as is)", raw
    yield "fp32 clean (shipped)", clean
    yield "int8 QDQ u8 act, float head", quantize(clean, calibration)
    yield "int8 QDQ s8 symmetric act", quantize(clean, calibration, activation_type=QuantType.QInt8)
    yield "int8 QOperator u8", quantize(clean, calibration, quant_format=QuantFormat.QOperator)
    yield "int8 QDQ, head quantized too", quantize(clean, calibration, float_head_kept=False)
    yield "int8 QDQ, first stage (conv, ReLU[, pool]) float too", quantize(clean, calibration, first_stage_kept=True)
    yield "int8 QDQ from the raw graph", quantize(raw, calibration)
    yield "int8 dynamic", quantize(clean, None, method="dynamic")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(ROOT / "runs"))
    parser.add_argument("--models", nargs="+", default=list(NAMES))
    args = parser.parse_args()

    import keras

    test = datasets.load_split("test")
    train = datasets.load_split("train")
    images = datasets.to_model_input(test.images)
    calibration = calibration_images(train.images, 1000, 0)
    rows = []
    for name in args.models:
        path = Path(args.runs) / name / "model.keras"
        if not path.is_file():
            print(f"skip {name}: no {path}", file=sys.stderr)
            continue
        model = keras.models.load_model(path, compile=False)
        reference = None
        for label, proto in variants(model, calibration):
            probs = verify.run(proto, images)
            reference = probs if reference is None else reference
            row = {"model": name, "variant": label, "bytes": len(proto.SerializeToString()),
                   "ops": len(proto.graph.node),
                   "test_accuracy": accuracy(probs, test.labels),
                   "agreement_with_fp32": accuracy(probs, reference.argmax(1))}
            for level_name, level in LEVELS.items():
                row[level_name] = measure(proto, level, images)
            rows.append(row)
            print(f"{name:7s} {label:40s} p50 {row['all']['p50_us']:8.1f} us  b256 {row['all']['b256_images_per_s']:10,.0f}/s"
                  f"  (extended: {row['extended']['p50_us']:8.1f} us, {row['extended']['b256_images_per_s']:10,.0f}/s)"
                  f"  acc {row['test_accuracy']:.4f}  agree {row['agreement_with_fp32']:.4f}", flush=True)
    info = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "export_variants.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")
    lines = [f"Machine: {info['cpu']}, {info['logical_cores']} logical cores ({', '.join(info['instruction_sets'])}); "
             f"onnxruntime {info['onnxruntime']}; one thread. `all` = ORT_ENABLE_ALL, `ext` = ORT_ENABLE_EXTENDED.",
             "", "| model | variant | ops | KiB | test acc | agree fp32 | p50 us (all) | b256 /s (all) | p50 us (ext) | b256 /s (ext) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['variant']} | {r['ops']} | {r['bytes'] / 1024:.0f} | {r['test_accuracy']:.4f} | "
                     f"{r['agreement_with_fp32']:.4f} | {r['all']['p50_us']:.1f} | {r['all']['b256_images_per_s']:,.0f} | "
                     f"{r['extended']['p50_us']:.1f} | {r['extended']['b256_images_per_s']:,.0f} |")
    (RESULTS / "export_variants.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
