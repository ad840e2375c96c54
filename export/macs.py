"""Multiply-accumulates per image, counted from an fp32 ONNX graph (Conv, MatMul, Gemm)."""

from __future__ import annotations

import copy

import numpy as np
import onnx


def count_macs(proto: onnx.ModelProto) -> int:
    model = copy.deepcopy(proto)
    for value in model.graph.input:  # batch of one, so every shape is static
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        shapes[value.name] = [d.dim_value for d in value.type.tensor_type.shape.dim]
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]  # (out, in/groups, kh, kw)
            out = shapes[node.output[0]]
            total += int(np.prod(out)) * int(np.prod(weight[1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            transposed = node.op_type == "Gemm" and any(x.name == "transB" and x.i for x in node.attribute)
            k, n = (b[1], b[0]) if transposed else (b[0], b[1])
            total += int(np.prod(a[:-1])) * k * n
    return total
