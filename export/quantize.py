"""int8 variants with onnxruntime.quantization: static QDQ (default) or dynamic."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edge_infer.io import write_atomic
from edge_infer.runtime import INPUT_NAME

METHODS = ("static", "dynamic")


class ArrayReader(CalibrationDataReader):
    """Feeds calibration images to the quantizer in batches."""

    def __init__(self, images: np.ndarray, batch_size: int = 64):
        self.batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
        self.position = 0

    def get_next(self):
        if self.position >= len(self.batches):
            return None
        batch = self.batches[self.position]
        self.position += 1
        return {INPUT_NAME: batch.astype(np.float32)}

    def rewind(self):
        self.position = 0


def quantize(fp32: onnx.ModelProto, calibration: np.ndarray | None, method: str = "static") -> onnx.ModelProto:
    """fp32 graph to int8. Static: QDQ, per-channel s8 weights, u8 activations, calibrated with
    MinMax on `calibration`. `quant_pre_process` (shape inference and ORT graph optimisation)
    runs first: it folds constants so fewer ops are left in float between Q/DQ pairs."""
    if method not in METHODS:
        raise ValueError(f"unknown quantization {method!r}; choose from {', '.join(METHODS)}")
    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, target = (Path(tmp) / n for n in ("fp32.onnx", "prep.onnx", "int8.onnx"))
        onnx.save(fp32, source)
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation, not a requirement
            prepared = source
        # The final Softmax stays float: quantizing it leaves rows that no longer sum to 1.
        prepared_model = onnx.load(prepared)
        outputs = {o.name for o in prepared_model.graph.output}
        keep_float = [n.name for n in prepared_model.graph.node if n.op_type == "Softmax" and n.output[0] in outputs]
        if method == "static":
            if calibration is None or len(calibration) == 0:
                raise ValueError("static quantization needs calibration images")
            quantize_static(
                str(prepared), str(target), ArrayReader(calibration), quant_format=QuantFormat.QDQ,
                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=keep_float,
            )
        else:
            quantize_dynamic(str(prepared), str(target), per_channel=True, weight_type=QuantType.QInt8,
                             nodes_to_exclude=keep_float)
        model = onnx.load(target)
    carried = {prop.key for prop in model.metadata_props}
    for prop in fp32.metadata_props:  # not every quantizer path carries metadata over
        if prop.key not in carried:
            model.metadata_props.add(key=prop.key, value=prop.value)
    return model


def save_model(proto: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Save atomically, so a failed export never leaves half a model where the runtime looks."""
    write_atomic(path, proto.SerializeToString())
