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

from edge_infer.datasets import to_model_input
from edge_infer.files import write_atomic
from edge_infer.runtime import DISABLED_OPTIMIZERS_KEY, INPUT_NAME

from .onnx_export import set_metadata

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


def float_head(model: onnx.ModelProto) -> list[str]:
    """Nodes left in float: the output Softmax (quantized, its rows no longer sum to 1) and the
    classifier layer feeding it. The head is a few hundred to a thousand MACs, but its int8
    rounding flips near-tie predictions: on model1, keeping it float raised int8/fp32 top-1
    agreement from 98.78% to 99.60%."""
    producers = {out: node for node in model.graph.node for out in node.output}
    outputs = {o.name for o in model.graph.output}
    keep = []
    for node in model.graph.node:
        if node.op_type != "Softmax" or node.output[0] not in outputs:
            continue
        keep.append(node.name)
        head = producers.get(node.input[0])
        if head is not None and head.op_type == "Add":  # MatMul + Add not fused into a Gemm
            keep.append(head.name)
            head = next((producers[i] for i in head.input if i in producers), None)
        if head is not None and head.op_type in ("Gemm", "MatMul"):
            keep.append(head.name)
    return keep


def first_stage(model: onnx.ModelProto) -> list[str]:
    """The first convolution and, when they follow it directly, its ReLU and max-pool.

    With one input channel, the first convolution as QLinearConv is slow for its arithmetic
    (on model2 it took longer than the second convolution, which has 11x the MACs). Kept float
    with its pool, quantization happens on the pooled tensor, a quarter of the size; the
    runtime must then not move that QuantizeLinear above the pool (`DISABLED_OPTIMIZERS_KEY`)."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    node = next((node for node in model.graph.node if node.op_type == "Conv"), None)
    if node is None:
        return []
    stage = [node.name]
    while node.op_type != "MaxPool":
        following = consumers.get(node.output[0], [])
        if len(following) != 1 or following[0].op_type not in ("Relu", "MaxPool"):
            break
        node = following[0]
        stage.append(node.name)
    return stage


def quantize(fp32: onnx.ModelProto, calibration: np.ndarray | None, method: str = "static",
             quant_format: QuantFormat = QuantFormat.QDQ, activation_type: QuantType = QuantType.QUInt8,
             float_head_kept: bool = True, first_stage_kept: bool = False) -> onnx.ModelProto:
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
        graph = onnx.load(prepared)
        kept_stage = first_stage(graph) if first_stage_kept else []
        keep_float = (float_head(graph) if float_head_kept else []) + kept_stage
        if method == "static":
            if calibration is None or len(calibration) == 0:
                raise ValueError("static quantization needs calibration images")
            quantize_static(
                str(prepared), str(target), ArrayReader(calibration), quant_format=quant_format,
                per_channel=True, activation_type=activation_type, weight_type=QuantType.QInt8,
                extra_options={"ActivationSymmetric": activation_type == QuantType.QInt8},
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
    if kept_stage and method == "static" and quant_format == QuantFormat.QDQ:  # the Q after it must stay put
        set_metadata(model, {DISABLED_OPTIMIZERS_KEY: ["QDQPropagationTransformer"]})
    return model


def save_model(proto: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Save atomically, so a failed export never leaves half a model where the runtime looks."""
    write_atomic(path, proto.SerializeToString())


def calibration_images(train_uint8: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A fixed sample of training images through the inference preprocessing: half as they
    are (28x28 grey passes through unchanged), half re-presented as listing photos and
    preprocessed back, so activation ranges cover what real photos produce."""
    from train.roundtrip import roundtrip_images

    picked = train_uint8[np.random.default_rng(seed).choice(len(train_uint8), size, replace=False)]
    half = size // 2
    clean = to_model_input(picked[:half])
    photos = roundtrip_images(picked[half:], seed, cache_dir=None, workers=1)
    return np.concatenate([clean, photos])
