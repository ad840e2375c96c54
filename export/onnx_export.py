"""Keras model to an ONNX graph with our fixed interface, and graph clean-ups for the runtime.

tf2onnx's `from_keras` fails on Keras 3 models (KeyError 'keras_tensor_N'), so the model is
wrapped in a `tf.function` with an input signature and converted with `from_function`.
Calling the model with training=False makes random flips and dropout inert; `verify` checks
that no random op survives.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edge_infer.classes import CLASS_NAMES
from edge_infer.runtime import INPUT_NAME, OUTPUT_NAME

OPSET = 17


def keras_to_onnx(model, opset: int = OPSET, clean_up: bool = True) -> onnx.ModelProto:
    """The ONNX graph of `model`; `clean_up=False` keeps tf2onnx's graph as it is (to measure the clean-ups)."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, 28, 28, 1), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature, autograph=False)
    def serve(image):
        return {OUTPUT_NAME: model(image, training=False)}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=opset)
    if clean_up:
        fold_flatten_transpose(proto)
        fold_affine_into_next_conv(proto)
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"  # the batch, named as in our interface
    return proto


def _initializers(graph) -> dict:
    return {init.name: init for init in graph.initializer}


def fold_flatten_transpose(proto: onnx.ModelProto) -> bool:
    """Remove the Transpose that tf2onnx puts before a Flatten (to keep Keras' NHWC element
    order) by permuting the rows of the following MatMul's weights instead, and give the
    flatten a constant shape. The transpose otherwise splits a quantized graph and costs a
    copy per image. Returns whether the pattern was found. Same numbers, fewer ops.
    """
    graph = proto.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    inits = _initializers(graph)
    shapes = _static_shapes(proto)
    for transpose in list(graph.node):
        if transpose.op_type != "Transpose":
            continue
        perm = list(next((a.ints for a in transpose.attribute if a.name == "perm"), []))
        if perm != [0, 2, 3, 1]:
            continue
        users = consumers.get(transpose.output[0], [])
        reshapes = [n for n in users if n.op_type == "Reshape"]
        if len(reshapes) != 1:
            continue
        reshape = reshapes[0]
        matmuls = consumers.get(reshape.output[0], [])
        if len(matmuls) != 1 or matmuls[0].op_type != "MatMul" or matmuls[0].input[1] not in inits:
            continue
        nchw = shapes.get(transpose.input[0])
        if not nchw or any(not isinstance(d, int) for d in nchw[1:]):
            continue
        channels, height, width = nchw[1:]
        weight_init = inits[matmuls[0].input[1]]
        weights = numpy_helper.to_array(weight_init)
        # Row r of the NCHW flatten is (c, h, w); the same element sat at (h, w, c) under NHWC.
        c, h, w = np.meshgrid(np.arange(channels), np.arange(height), np.arange(width), indexing="ij")
        nhwc_rows = (h * width * channels + w * channels + c).reshape(-1)
        weight_init.CopyFrom(numpy_helper.from_array(weights[nhwc_rows], weight_init.name))
        shape_name = reshape.output[0] + "__static_shape"
        graph.initializer.append(
            numpy_helper.from_array(np.array([-1, channels * height * width], dtype=np.int64), shape_name)
        )
        reshape.input[0] = transpose.input[0]
        reshape.input[1] = shape_name
        graph.node.remove(transpose)
        _remove_dead_nodes(graph)
        return True
    return False


def _attribute(node, name, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def fold_affine_into_next_conv(proto: onnx.ModelProto) -> int:
    """Fold a per-channel Mul/Add (a batch-norm placed after a ReLU, as in the study's model3)
    into the next unpadded convolution, through any max-pools between them.

    max(a*x + b) = a*max(x) + b holds when every scale a is positive, and an unpadded Conv
    of (a*y + b) is a Conv of y with weights scaled by a and a bias grown by W.b. Otherwise
    the affine op stays as float arithmetic between quantize/dequantize pairs in int8.
    Returns how many were folded.
    """
    graph = proto.graph
    folded = 0
    while True:
        consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        inits = _initializers(graph)
        graph_outputs = {o.name for o in graph.output}

        def only_user(name):
            users = consumers.get(name, [])
            return users[0] if len(users) == 1 and name not in graph_outputs else None

        for mul in graph.node:
            if mul.op_type != "Mul" or mul.input[1] not in inits:
                continue
            add = only_user(mul.output[0])
            if add is None or add.op_type != "Add" or add.input[1] not in inits:
                continue
            scale = numpy_helper.to_array(inits[mul.input[1]])
            shift = numpy_helper.to_array(inits[add.input[1]])
            if scale.ndim != 4 or scale.shape[0] != 1 or scale.shape[2:] != (1, 1) or shift.shape != scale.shape:
                continue
            pools, node = [], only_user(add.output[0])
            while node is not None and node.op_type == "MaxPool":
                pools.append(node)
                node = only_user(node.output[0])
            conv = node
            if conv is None or conv.op_type != "Conv" or conv.input[1] not in inits:
                continue
            if pools and not (scale > 0).all():
                continue  # max-pool commutes only with a positive scale
            padded = any(_attribute(conv, "pads", [])) or _attribute(conv, "auto_pad", b"NOTSET") not in (
                b"NOTSET", b"VALID")
            if padded or _attribute(conv, "group", 1) != 1:
                continue  # zero padding of (a*y + b) is not a*(padded y) + b
            weight_init = inits[conv.input[1]]
            weight = numpy_helper.to_array(weight_init)
            a = scale.reshape(1, -1, 1, 1)
            b = shift.reshape(1, -1, 1, 1)
            if weight.shape[1] != a.shape[1]:
                continue
            extra_bias = (weight * b).sum(axis=(1, 2, 3))
            weight_init.CopyFrom(numpy_helper.from_array((weight * a).astype(weight.dtype), weight_init.name))
            if len(conv.input) > 2 and conv.input[2] in inits:
                bias_init = inits[conv.input[2]]
                bias = numpy_helper.to_array(bias_init) + extra_bias
                bias_init.CopyFrom(numpy_helper.from_array(bias.astype(weight.dtype), bias_init.name))
            else:
                name = conv.output[0] + "__folded_bias"
                graph.initializer.append(numpy_helper.from_array(extra_bias.astype(weight.dtype), name))
                del conv.input[2:]
                conv.input.append(name)
            first = pools[0] if pools else conv
            first.input[0] = mul.input[0]
            graph.node.remove(mul)
            graph.node.remove(add)
            _remove_dead_nodes(graph)
            folded += 1
            break
        else:
            return folded


def _static_shapes(proto: onnx.ModelProto) -> dict[str, list]:
    inferred = onnx.shape_inference.infer_shapes(proto)
    shapes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]
    return shapes


def _remove_dead_nodes(graph) -> None:
    """Drop nodes (and initializers) whose outputs nothing uses, e.g. the old dynamic shape chain."""
    while True:
        used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [node for node in graph.node if not any(out in used for out in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def set_metadata(proto: onnx.ModelProto, metadata: dict) -> None:
    """Write each value as JSON into metadata_props, keeping other keys already there."""
    props = {prop.key: prop.value for prop in proto.metadata_props}
    props.update({key: json.dumps(value) for key, value in metadata.items()})
    del proto.metadata_props[:]
    helper.set_model_props(proto, props)


def base_metadata(name: str, params: int, run: dict, precision: str, preprocessing: str,
                  quantization: str | None = None) -> dict:
    return {
        "model_name": name,
        "class_names": list(CLASS_NAMES),
        "input": {"name": INPUT_NAME, "shape": ["N", 28, 28, 1], "layout": "NHWC", "dtype": "float32",
                  "scale": "[0, 1], bright object on black (Fashion-MNIST)"},
        "output": {"name": OUTPUT_NAME, "shape": ["N", 10], "meaning": "class probabilities"},
        "preprocessing": preprocessing,
        "params": params,
        "precision": precision,
        "quantization": quantization,
        "training_data_sha256": run.get("data_checksums", {}),
        "training_seed": run.get("seed"),
        "training_commit": run.get("git_commit"),
    }
