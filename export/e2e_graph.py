"""The robust preprocessing (edge_infer.preprocess.robust) as one ONNX graph of standard operators.

Input `rgba`: uint8 (H, W, 4), any H and W, alpha 255 where the picture is opaque. Output
`preprocessed`: float32 (1, 28, 28, 1), what the classifier sees. Every step of the Python
version is here, in the same order and with Pillow's own arithmetic where it matters (its
resampling filters, fixed-point coefficients and pass order, premultiplied alpha, its box-blur
passes, its unsharp mask), so that the two agree to the bit (tests/test_e2e.py, the export gate):

  paste on white -> thumbnail (<= 128 px) -> background from the border ring -> foreground by
  colour distance, by alpha, or by segmenting the garment (full-covariance colour mixtures on a
  96 px thumbnail, holes filled) -> the box holding the central mass -> crop (garment pasted on white
  when segmented) -> grey -> Lanczos to 28 on the long side -> invert on a light background ->
  unsharp mask -> background to 0, object stretched to 1 -> centred on 28x28.

A grey 28x28 picture with dark corners is already in Fashion-MNIST form and passes unchanged.
Geometry (sizes, boxes, resampling weights) is computed in float64 or int64 as Pillow and NumPy
do; pixels in float32 holding whole grey levels, rounded where Pillow rounds to 8 bits.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper

from edge_infer import preprocess
from edge_infer import segment
from edge_infer.classes import IMAGE_SIZE

from .e2e_segment import garment_mask
from .onnx_graph import (BOOL, DOUBLE, FLOAT, INT64, UINT8, Graph, any_, if_, if_many, item, select_mask,
                         value_info)

OPSET = 17
_PRECISION_BITS = 22  # Pillow's fixed-point coefficients for 8-bit resampling (Resample.c)


class _Filter:
    def __init__(self, name: str, support: float):
        self.name, self.support = name, support


BOX, BILINEAR, LANCZOS = _Filter("box", 0.5), _Filter("bilinear", 1.0), _Filter("lanczos", 3.0)


def build_preprocessing(input_name: str = "rgba", output_name: str = "preprocessed") -> onnx.ModelProto:
    """The preprocessing alone as a model: rgba (H, W, 4) uint8 -> (1, 28, 28, 1) float32."""
    g = Graph()
    out = preprocessing(g, input_name)
    g.rename(out, output_name)
    graph = g.to_graph("robust_preprocessing", [value_info(input_name, UINT8, ["H", "W", 4])],
                       [value_info(output_name, FLOAT, [1, IMAGE_SIZE, IMAGE_SIZE, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def preprocessing(g: Graph, rgba: str) -> str:
    """Append the preprocessing of `rgba` to g; returns the (1, 28, 28, 1) output's name."""
    shape = g.op("Shape", rgba)
    height, width = item(g, shape, 0), item(g, shape, 1)
    channels = g.const([2], INT64)  # sliced and transposed as bytes: a quarter of the memory traffic
    rgb = g.cast(g.op("Transpose", g.slice(rgba, g.const(0, INT64), g.const(3, INT64), channels), perm=[2, 0, 1]),
                 FLOAT)  # (3, H, W)
    alpha_bytes = g.slice(rgba, g.const(3, INT64), g.const(4, INT64), channels)
    opaque = g.op("Equal", g.op("ReduceMin", g.cast(alpha_bytes, FLOAT), keepdims=0), g.const(255.0))
    # a picture already in Fashion-MNIST form skips everything else, as in robust()
    ready = g.subgraph()
    as_is = _as_is(ready, rgb)
    work = g.subgraph()
    flat, foreground, background, segmented = _find_object(work, rgb, alpha_bytes, opaque, height, width)
    crop, mask_crop = _crop_to_object(work, flat, foreground, height, width)
    crop = _paste_on_white_if(work, segmented, crop, mask_crop)
    canvas = _to_28(work, _luma(work, crop), background)
    result = if_(g, _passes_through(g, rgb, height, width, opaque), ready, as_is, work, canvas, FLOAT, "robust")
    return g.op("Reshape", result, g.const([1, IMAGE_SIZE, IMAGE_SIZE, 1], INT64))


def _find_object(g: Graph, rgb: str, alpha_bytes: str, opaque: str, height: str, width: str):
    """preprocess.find_object: the picture on white, the object's mask (on the thumbnail's grid,
    or the segmenter's), the background's grey level, and whether the garment was segmented."""
    thumb_h, thumb_w = _thumbnail_size(g, height, width, preprocess._ANALYSIS_SIZE)
    flat, thumb, thumb_alpha = _flatten_and_thumbnail(g, rgb, alpha_bytes, opaque, height, width, thumb_h, thumb_w)
    colour_foreground, background_grey, spread = _colour_foreground(g, thumb)
    # the alpha channel says where the object is, unless it is all or nothing
    alpha_foreground = g.op("Squeeze", g.op("Greater", thumb_alpha, g.const(127.0)), g.const([0], INT64))
    use_alpha = g.and_(any_(g, alpha_foreground), any_(g, g.op("Not", alpha_foreground)))
    thumb_foreground = select_mask(g, use_alpha, alpha_foreground, colour_foreground)
    background = g.where(use_alpha, g.const(255.0, DOUBLE), background_grey)
    wants_segment = g.and_(opaque, g.op("Greater", spread, g.const(preprocess._SEGMENT_SPREAD, DOUBLE)))
    segmented, foreground = _segment_or_keep(g, wants_segment, thumb, thumb_foreground)
    return flat, foreground, g.where(segmented, g.const(255.0, DOUBLE), background), segmented


def _crop_to_object(g: Graph, flat: str, foreground: str, height: str, width: str) -> tuple[str, str]:
    """The box holding the foreground's central mass, in its grid and scaled to the picture:
    the picture cropped to it, and the foreground (as 0/1) cropped to it."""
    fg_shape = g.op("Shape", foreground)
    fg_h, fg_w = item(g, fg_shape, 0), item(g, fg_shape, 1)
    fg = g.cast(foreground, DOUBLE)
    left, right = _mass_span(g, g.op("ReduceSum", fg, g.const([0], INT64), keepdims=0), fg_w)
    top, bottom = _mass_span(g, g.op("ReduceSum", fg, g.const([1], INT64), keepdims=0), fg_h)
    scale_x = g.div(g.cast(width, DOUBLE), g.cast(fg_w, DOUBLE))
    scale_y = g.div(g.cast(height, DOUBLE), g.cast(fg_h, DOUBLE))
    image_left = g.cast(g.op("Floor", g.mul(g.cast(left, DOUBLE), scale_x)), INT64)
    image_top = g.cast(g.op("Floor", g.mul(g.cast(top, DOUBLE), scale_y)), INT64)
    image_right = g.minimum(width, g.cast(g.op("Ceil", g.mul(g.cast(right, DOUBLE), scale_x)), INT64))
    image_bottom = g.minimum(height, g.cast(g.op("Ceil", g.mul(g.cast(bottom, DOUBLE), scale_y)), INT64))
    crop = g.slice(flat, g.op("Concat", image_top, image_left, axis=0),
                   g.op("Concat", image_bottom, image_right, axis=0), g.const([1, 2], INT64))
    mask_crop = g.slice(g.cast(foreground, FLOAT), g.op("Concat", top, left, axis=0),
                        g.op("Concat", bottom, right, axis=0), g.const([0, 1], INT64))
    return crop, mask_crop


def _to_28(g: Graph, grey: str, background: str) -> str:
    """The grey crop (1, h, w) to the 28x28 canvas: Lanczos to 28 on the long side, inverted on
    a light background, unsharp mask, background to 0 and object stretched to 1, centred."""
    grey_shape = g.op("Shape", grey)
    crop_h, crop_w = item(g, grey_shape, 1), item(g, grey_shape, 2)
    scale = g.div(g.const(float(IMAGE_SIZE), DOUBLE), g.cast(g.maximum(crop_h, crop_w), DOUBLE))
    one = g.const(1, INT64)
    small_w = g.maximum(one, g.cast(g.op("Round", g.mul(g.cast(crop_w, DOUBLE), scale)), INT64))
    small_h = g.maximum(one, g.cast(g.op("Round", g.mul(g.cast(crop_h, DOUBLE), scale)), INT64))
    small = resample(g, grey, small_h, small_w, LANCZOS, reducing_gap=3.0)
    light = g.op("GreaterOrEqual", background, g.const(128.0, DOUBLE))
    small = g.where(light, g.sub(g.const(255.0), small), small)
    small = _unsharp_mask(g, small, radius=preprocess._SHARPEN_RADIUS, percent=preprocess._SHARPEN_PERCENT,
                          threshold=preprocess._SHARPEN_THRESHOLD)

    # _black_background: NumPy subtracts the level in float32 but the span is a Python float
    level = g.where(light, g.sub(g.const(255.0, DOUBLE), background), background)
    span = g.sub(g.cast(g.op("ReduceMax", small, keepdims=0), DOUBLE), level)
    stretched = g.op("Clip", g.div(g.sub(small, g.cast(level, FLOAT)), g.cast(span, FLOAT)),
                     g.const(0.0, FLOAT, scalar=True), g.const(1.0, FLOAT, scalar=True))
    stretched = g.where(g.op("Less", span, g.const(1.0, DOUBLE)), g.mul(small, g.const(0.0)), stretched)

    size = g.const(IMAGE_SIZE, INT64)
    two = g.const(2, INT64)
    pad_top = g.div(g.sub(size, small_h), two)
    pad_left = g.div(g.sub(size, small_w), two)
    pads = g.op("Concat", g.const(0, INT64), pad_top, pad_left, g.const(0, INT64),
                g.sub(g.sub(size, small_h), pad_top), g.sub(g.sub(size, small_w), pad_left), axis=0)
    return g.op("Pad", stretched, pads, g.const(0.0, FLOAT, scalar=True))  # (1, 28, 28)


def _passes_through(g: Graph, rgb: str, height: str, width: str, opaque: str) -> str:
    """Whether the picture is already in Fashion-MNIST form (checked only for 28x28 ones)."""
    size = g.const(IMAGE_SIZE, INT64)
    square = g.and_(g.op("Equal", height, size), g.op("Equal", width, size))
    then = g.subgraph()
    check = _fashion_mnist_form(then, rgb, opaque)
    return if_(g, square, then, check, g.subgraph(), g.const(False, BOOL), BOOL, "fashion_mnist_form")


def _as_is(g: Graph, rgb: str) -> str:
    """A 28x28 picture already in Fashion-MNIST form: its grey levels / 255."""
    first = g.slice(rgb, g.const(0, INT64), g.const(1, INT64), g.const(0, INT64))
    return g.div(first, g.const(255.0))


# --- small pieces ---------------------------------------------------------------------------


def _thumbnail_size(g: Graph, height: str, width: str, limit: int) -> tuple[str, str]:
    """Pillow's Image.thumbnail size: the aspect kept, each side the nearer of floor and ceil."""
    h, w = g.cast(height, DOUBLE), g.cast(width, DOUBLE)
    bound = g.const(float(limit), DOUBLE)
    one = g.const(1.0, DOUBLE)
    fits = g.and_(g.op("LessOrEqual", w, bound), g.op("LessOrEqual", h, bound))
    aspect = g.div(w, h)
    wide = g.op("Greater", aspect, one)  # Pillow's `x / y >= aspect` is false

    exact = g.mul(bound, aspect)  # tall: width = round_aspect(limit * aspect)
    low, high = g.op("Floor", exact), g.op("Ceil", exact)
    error_low = g.op("Abs", g.sub(aspect, g.div(low, bound)))
    error_high = g.op("Abs", g.sub(aspect, g.div(high, bound)))
    tall_width = g.maximum(g.where(g.op("LessOrEqual", error_low, error_high), low, high), one)

    exact = g.div(bound, aspect)  # wide: height = round_aspect(limit / aspect)
    low, high = g.op("Floor", exact), g.op("Ceil", exact)
    zero = g.const(0.0, DOUBLE)
    error_low = g.where(g.op("Equal", low, zero), zero, g.op("Abs", g.sub(aspect, g.div(bound, low))))
    error_high = g.where(g.op("Equal", high, zero), zero, g.op("Abs", g.sub(aspect, g.div(bound, high))))
    wide_height = g.maximum(g.where(g.op("LessOrEqual", error_low, error_high), low, high), one)

    new_w = g.where(fits, w, g.where(wide, bound, tall_width))
    new_h = g.where(fits, h, g.where(wide, wide_height, bound))
    return g.cast(new_h, INT64), g.cast(new_w, INT64)


def _flatten_and_thumbnail(g: Graph, rgb: str, alpha_bytes: str, opaque: str, height: str, width: str,
                           thumb_h: str, thumb_w: str) -> tuple[str, str, str]:
    """The picture on white (full size), its thumbnail and the thumbnail's alpha, as Python gets
    them: Pillow resizes RGBA with premultiplied alpha (RGBA -> RGBa -> resize -> RGBA) and
    find_object flattens the thumbnail; a picture that needs no shrinking is copied as it is.
    Opaque pictures (most) skip all of it in the other branch."""
    then = g.subgraph()
    alpha = then.cast(then.op("Transpose", alpha_bytes, perm=[2, 0, 1]), FLOAT)  # (1, H, W)
    flat = _on_white(then, rgb, alpha)
    shrinks = then.op("Not", then.and_(then.op("Equal", thumb_h, height), then.op("Equal", thumb_w, width)))
    small = then.subgraph()
    premultiplied = small.op("Concat", _round_product(small, rgb, alpha), alpha, axis=0)
    resized = resample(small, premultiplied, thumb_h, thumb_w, BOX, reducing_gap=2.0)
    colours = small.slice(resized, small.const(0, INT64), small.const(3, INT64), small.const(0, INT64))
    small_alpha = small.slice(resized, small.const(3, INT64), small.const(4, INT64), small.const(0, INT64))
    # RGBa -> RGBA: 255 c / a truncated (0 and 255 alpha left alone), as Convert.c
    divided = small.op("Clip", small.op("Floor", small.div(small.mul(colours, small.const(255.0)),
                                                            small.maximum(small_alpha, small.const(1.0)))),
                       small.const(0.0, scalar=True), small.const(255.0, scalar=True))
    untouched = small.op("Or", small.op("Equal", small_alpha, small.const(0.0)),
                         small.op("Equal", small_alpha, small.const(255.0)))
    unpremultiplied = small.where(untouched, colours, divided)
    small_thumb = _on_white(small, unpremultiplied, small_alpha)
    same = then.subgraph()
    thumb, thumb_alpha = if_many(then, shrinks, small, [small_thumb, small_alpha], same, [flat, alpha],
                                 [FLOAT, FLOAT], "alpha_thumbnail")
    otherwise = g.subgraph()
    opaque_thumb = resample(otherwise, rgb, thumb_h, thumb_w, BOX, reducing_gap=2.0)
    return if_many(g, g.op("Not", opaque), then, [flat, thumb, thumb_alpha], otherwise,
                   [rgb, opaque_thumb, otherwise.const(np.full((1, 1, 1), 255.0, np.float32))],
                   [FLOAT, FLOAT, FLOAT], "transparency")


def _round_product(g: Graph, colour: str, alpha: str) -> str:
    """Pillow's MULDIV255: c a / 255 rounded (never a tie: 255 is odd)."""
    return g.op("Floor", g.add(g.div(g.mul(colour, alpha), g.const(255.0)), g.const(0.5)))


def _on_white(g: Graph, colour: str, alpha: str) -> str:
    """Pillow's paste through a mask onto white: round((c a + 255 (255 - a)) / 255), written as
    floor((c - 255) a / 255 + 255.5), which never lands within float32's error of a whole
    number (255 is odd) and needs no clipping."""
    return g.op("Floor", g.add(g.div(g.mul(g.sub(colour, g.const(255.0)), alpha), g.const(255.0)), g.const(255.5)))


# --- resampling as Pillow does it ---------------------------------------------------------


def resample(g: Graph, image: str, out_h: str, out_w: str, kind: _Filter, reducing_gap: float | None) -> str:
    """Pillow's Image.resize of a (C, h, w) 8-bit image: reduce() by whole factors first when
    reducing_gap asks for it, then the filter along one axis and the other, 8 bits after each."""
    shape = g.op("Shape", image)
    height, width = item(g, shape, 1), item(g, shape, 2)
    end_w = end_h = None  # the whole picture (a box given only after reduce())
    if reducing_gap is not None:
        in_w, in_h = g.cast(width, DOUBLE), g.cast(height, DOUBLE)
        one = g.const(1.0, DOUBLE)
        gap = g.const(reducing_gap, DOUBLE)
        factor_w = g.maximum(one, g.op("Floor", g.div(g.div(in_w, g.cast(out_w, DOUBLE)), gap)))
        factor_h = g.maximum(one, g.op("Floor", g.div(g.div(in_h, g.cast(out_h, DOUBLE)), gap)))
        then = g.subgraph()
        reduced = _reduce(then, image, height, width, then.cast(factor_h, INT64), then.cast(factor_w, INT64))
        image = if_(g, g.op("Or", g.op("Greater", factor_w, one), g.op("Greater", factor_h, one)),
                    then, reduced, g.subgraph(), image, FLOAT, "reduced")
        # the box left to resample, in the reduced image (Pillow passes it as a C float)
        end_w = g.cast(g.cast(g.div(in_w, factor_w), FLOAT), DOUBLE)
        end_h = g.cast(g.cast(g.div(in_h, factor_h), FLOAT), DOUBLE)
        shape = g.op("Shape", image)
        height, width = item(g, shape, 1), item(g, shape, 2)
    # Pillow 13 resamples vertically first when that shrinks more: found by experiment (1,068
    # random resizes where the order matters, box, bilinear and Lanczos, reduced or not: this
    # rule picks Pillow's order in all of them; tests/test_e2e.py checks both orders)
    shrink_h, shrink_w = g.sub(height, out_h), g.sub(width, out_w)
    down_first = g.and_(g.op("Less", out_h, height), g.op("Greater", shrink_h, g.mul(g.const(2, INT64), shrink_w)))
    across = g.subgraph()
    across_out = _resample_axis(across, _resample_axis(across, image, 2, width, end_w, out_w, kind),
                                1, height, end_h, out_h, kind)
    down = g.subgraph()
    down_out = _resample_axis(down, _resample_axis(down, image, 1, height, end_h, out_h, kind),
                              2, width, end_w, out_w, kind)
    return if_(g, down_first, down, down_out, across, across_out, FLOAT, "resampled")


def _resample_axis(g: Graph, image: str, axis: int, in_size: str, in_end: str | None, out_size: str,
                   kind: _Filter) -> str:
    """One pass of Pillow's resampling along `axis` (ImagingResampleHorizontal/Vertical_8bpc):
    each output is 2^21 + the sum of inputs times integer weights, shifted right by 22 bits.

    Computed exactly, two ways: the box filter (thumbnails, where the input is the whole
    picture) as differences of a running sum, one weight per output; the others (small inputs:
    a 96-pixel mask, a crop already reduced to under 6x the output) as two float32 matrix
    products, the weights split into high and low 11 bits so every partial sum is an integer
    float32 holds exactly, joined in float64."""
    first, weights, taps = _coefficients(g, in_size, in_end, out_size, kind)  # (out,), (out, taps)
    if kind is BOX:
        present = g.cast(g.op("Greater", weights, g.const(0.0, DOUBLE)), INT64)
        count = g.op("ReduceSum", present, g.const([1], INT64), keepdims=0)
        start = g.add(first, g.op("ArgMax", present, axis=1, keepdims=0))
        weight = g.op("ReduceMax", weights, axes=[1], keepdims=0)  # one value per output
        pads = [0, 0, 0, 0, 0, 0]
        pads[axis] = 1
        running = g.op("Pad", g.op("CumSum", image, g.const(axis, INT64, scalar=True)), g.const(pads, INT64),
                       g.const(0.0, scalar=True))  # exact: at most 255 * 65,535 < 2^24
        window = g.sub(g.op("Gather", running, g.add(start, count), axis=axis),
                       g.op("Gather", running, start, axis=axis))
        shape = [1, 1, 1]
        shape[axis] = -1
        total = g.mul(g.cast(window, DOUBLE), g.op("Reshape", weight, g.const(shape, INT64)))
    else:
        dense = g.op("ScatterElements", g.op("ConstantOfShape", g.op("Concat", out_size, in_size, axis=0),
                                             value=helper.make_tensor("zero", DOUBLE, [1], [0.0])),
                     g.minimum(g.add(g.op("Unsqueeze", first, g.const([1], INT64)),
                                     g.op("Range", g.const(0, INT64, scalar=True), g.op("Squeeze", taps),
                                          g.const(1, INT64, scalar=True))),
                               g.sub(in_size, g.const(1, INT64))),
                     weights, axis=1, reduction="add")  # (out, in)
        low_bits = g.const(2048.0, DOUBLE)
        high = g.op("Floor", g.div(dense, low_bits))
        low = g.sub(dense, g.mul(high, low_bits))

        def product(matrix):
            matrix = g.cast(matrix, FLOAT)
            if axis == 2:
                return g.cast(g.op("MatMul", image, g.op("Transpose", matrix, perm=[1, 0])), DOUBLE)
            return g.cast(g.op("MatMul", matrix, image), DOUBLE)

        total = g.add(g.mul(product(high), low_bits), product(low))
    half = g.const(float(1 << (_PRECISION_BITS - 1)), DOUBLE)
    shifted = g.op("Floor", g.div(g.add(total, half), g.const(float(1 << _PRECISION_BITS), DOUBLE)))
    return g.op("Clip", g.cast(shifted, FLOAT), g.const(0.0, scalar=True), g.const(255.0, scalar=True))


def _reduce(g: Graph, image: str, height: str, width: str, factor_h: str, factor_w: str) -> str:
    """Pillow's Image.reduce: the mean of each factor_h x factor_w block (partial blocks at the
    right and bottom edges averaged over what they hold), rounded."""
    one = g.const(1, INT64)
    blocks_w = g.div(g.sub(g.add(width, factor_w), one), factor_w)
    blocks_h = g.div(g.sub(g.add(height, factor_h), one), factor_h)
    zero = g.const(0, INT64)
    pads = g.op("Concat", zero, zero, zero, zero, g.sub(g.mul(blocks_h, factor_h), height),
                g.sub(g.mul(blocks_w, factor_w), width), axis=0)
    padded = g.op("Pad", image, pads, g.const(0.0, scalar=True))
    channels = item(g, g.op("Shape", image), 0)
    sums = g.op("Reshape", padded, g.op("Concat", channels, blocks_h, factor_h, blocks_w, factor_w, axis=0))
    sums = g.op("ReduceSum", sums, g.const([2, 4], INT64), keepdims=0)  # (C, blocks_h, blocks_w)
    count_w = g.minimum(factor_w, g.sub(width, g.mul(g.op("Range", g.const(0, INT64, scalar=True),
                                                             g.op("Squeeze", blocks_w),
                                                             g.const(1, INT64, scalar=True)), factor_w)))
    count_h = g.minimum(factor_h, g.sub(height, g.mul(g.op("Range", g.const(0, INT64, scalar=True),
                                                               g.op("Squeeze", blocks_h),
                                                               g.const(1, INT64, scalar=True)), factor_h)))
    counts = g.mul(g.op("Unsqueeze", g.cast(count_h, FLOAT), g.const([1], INT64)), g.cast(count_w, FLOAT))
    # Reduce.c: ((sum + n / 2) * multiplier) >> 24, multiplier = (UINT32)(2^32 / (256 n)) in C floats
    multiplier = g.cast(g.op("Floor", g.div(g.const(2.0 ** 32), g.mul(counts, g.const(256.0)))), DOUBLE)
    amend = g.cast(g.op("Floor", g.div(counts, g.const(2.0))), DOUBLE)
    scaled = g.mul(g.add(g.cast(sums, DOUBLE), amend), multiplier)
    return g.cast(g.op("Floor", g.div(scaled, g.const(2.0 ** 24, DOUBLE))), FLOAT)


def _coefficients(g: Graph, in_size: str, in_end: str | None, out_size: str,
                  kind: _Filter) -> tuple[str, str, str]:
    """Pillow's precompute_coeffs + normalize_coeffs_8bpc: for each output its first input
    (out,) int64, the integer weights of the `taps` inputs from there (out, taps) float64, and
    taps = 2 ceil(support) + 1."""
    if in_end is None:
        in_end = g.cast(in_size, DOUBLE)
    scale = g.div(in_end, g.cast(out_size, DOUBLE))
    filter_scale = g.maximum(scale, g.const(1.0, DOUBLE))
    support = g.mul(g.const(kind.support, DOUBLE), filter_scale)
    taps = g.cast(g.add(g.mul(g.op("Ceil", support), g.const(2.0, DOUBLE)), g.const(1.0, DOUBLE)), INT64)
    zero, step = g.const(0, INT64, scalar=True), g.const(1, INT64, scalar=True)
    outputs = g.cast(g.op("Range", zero, g.op("Squeeze", out_size), step), DOUBLE)
    centre = g.op("Unsqueeze", g.mul(g.add(outputs, g.const(0.5, DOUBLE)), scale), g.const([1], INT64))
    half = g.const(0.5, DOUBLE)
    first = g.maximum(g.op("Floor", g.add(g.sub(centre, support), half)), g.const(0.0, DOUBLE))  # (out, 1)
    last = g.minimum(g.op("Floor", g.add(g.add(centre, support), half)), g.cast(in_size, DOUBLE))
    offsets = g.op("Unsqueeze", g.cast(g.op("Range", zero, g.op("Squeeze", taps), step), DOUBLE), g.const([0], INT64))
    inputs = g.add(first, offsets)  # (out, taps)
    x = g.div(g.add(g.sub(inputs, centre), half), filter_scale)
    weights = g.mul(_filter(g, x, kind), g.cast(g.op("Less", inputs, last), DOUBLE))
    total = g.op("ReduceSum", weights, g.const([1], INT64), keepdims=1)
    weights = g.where(g.op("Equal", total, g.const(0.0, DOUBLE)), weights, g.div(weights, total))
    fixed = g.mul(weights, g.const(float(1 << _PRECISION_BITS), DOUBLE))
    fixed = g.where(g.op("Less", fixed, g.const(0.0, DOUBLE)), g.op("Ceil", g.sub(fixed, half)),
                    g.op("Floor", g.add(fixed, half)))
    return g.cast(g.op("Reshape", first, g.const([-1], INT64)), INT64), fixed, taps


def _filter(g: Graph, x: str, kind: _Filter) -> str:
    zero, one = g.const(0.0, DOUBLE), g.const(1.0, DOUBLE)
    if kind is BOX:
        inside = g.and_(g.op("Greater", x, g.const(-0.5, DOUBLE)), g.op("LessOrEqual", x, g.const(0.5, DOUBLE)))
        return g.cast(inside, DOUBLE)
    if kind is BILINEAR:
        return g.maximum(g.sub(one, g.op("Abs", x)), zero)
    if kind is LANCZOS:
        inside = g.and_(g.op("GreaterOrEqual", x, g.const(-3.0, DOUBLE)), g.op("Less", x, g.const(3.0, DOUBLE)))
        value = g.mul(_sinc(g, x), _sinc(g, g.div(x, g.const(3.0, DOUBLE))))
        return g.where(inside, value, zero)
    raise ValueError(kind.name)


def _sinc(g: Graph, x: str) -> str:
    angle = g.mul(x, g.const(math.pi, DOUBLE))
    is_zero = g.op("Equal", x, g.const(0.0, DOUBLE))
    safe = g.where(is_zero, g.const(1.0, DOUBLE), angle)
    return g.where(is_zero, g.const(1.0, DOUBLE), g.div(g.op("Sin", safe), safe))


def _luma(g: Graph, rgb: str) -> str:
    """Pillow's RGB to L: (R 19595 + G 38470 + B 7471 + 2^15) >> 16, exact in float32."""
    weights = g.const(np.array([[19595.0, 38470.0, 7471.0]], dtype=np.float32))
    shape = g.op("Shape", rgb)
    flat = g.op("Reshape", rgb, g.const([3, -1], INT64))
    total = g.op("MatMul", weights, flat)  # whole numbers below 2^24: exact whatever the order
    scaled = g.mul(g.add(total, g.const(32768.0)), g.const(1.0 / 65536.0))  # a power of two: exact
    return g.op("Reshape", g.op("Floor", scaled), g.op("Concat", g.const([1], INT64),
                                                       g.slice(shape, g.const(1, INT64), g.const(3, INT64),
                                                               g.const(0, INT64)), axis=0))


# --- blur and sharpening as Pillow does them -------------------------------------------------


def _box_blur_constants(radius: float, passes: int = 3) -> tuple[int, int, int]:
    """Pillow's gaussian blur as box blurs (BoxBlur.c): integer radius and fixed-point weights,
    computed in C floats."""
    f = np.float32
    sigma2 = f(radius) * f(radius) / f(passes)
    box_length = f(math.sqrt(f(12.0) * sigma2 + f(1.0)))
    whole = f(math.floor((box_length - f(1.0)) / f(2.0)))
    fraction = (f(2) * whole + f(1)) * (whole * (whole + f(1)) - f(3) * sigma2)
    fraction = fraction / (f(6) * (sigma2 - (whole + f(1)) * (whole + f(1))))
    box_radius = f(whole + fraction)
    integer = int(box_radius)
    inner = int(f(1 << 24) / (box_radius * f(2) + f(1)))
    outer = ((1 << 24) - (integer * 2 + 1) * inner) // 2
    return integer, inner, outer


def _box_blur_pass(g: Graph, image: str, axis: int, radius: int, inner: int, outer: int) -> str:
    """One box-blur pass along `axis` of a (C, h, w) image, edges repeated, rounded as Pillow."""
    length = item(g, g.op("Shape", image), axis)
    reach = radius + 1
    zeros = [0, 0, 0]
    pads = zeros.copy()
    pads[axis] = reach
    padded = g.op("Pad", g.cast(image, DOUBLE), g.const(pads + pads, INT64), mode="edge")
    axis_const = g.const([axis], INT64)

    def shifted(offset: int) -> str:
        start = g.const(reach + offset, INT64)
        return g.slice(padded, start, g.add(start, length), axis_const)

    window = shifted(-radius)
    for offset in range(-radius + 1, radius + 1):
        window = g.add(window, shifted(offset))
    bulk = g.add(g.mul(window, g.const(float(inner), DOUBLE)),
                 g.mul(g.add(shifted(-reach), shifted(reach)), g.const(float(outer), DOUBLE)))
    out = g.op("Floor", g.div(g.add(bulk, g.const(float(1 << 23), DOUBLE)), g.const(float(1 << 24), DOUBLE)))
    return g.cast(out, FLOAT)


def gaussian_blur(g: Graph, image: str, radius: float) -> str:
    """Pillow's ImageFilter.GaussianBlur(radius) on a (C, h, w) 8-bit image."""
    integer, inner, outer = _box_blur_constants(radius)
    for axis in (2, 2, 2, 1, 1, 1):  # three passes across, then three down, as Pillow
        image = _box_blur_pass(g, image, axis, integer, inner, outer)
    return image


def _unsharp_mask(g: Graph, image: str, radius: float, percent: int, threshold: int) -> str:
    """Pillow's ImageFilter.UnsharpMask (UnsharpMask.c), C integer arithmetic."""
    blurred = gaussian_blur(g, image, radius)
    diff = g.cast(g.sub(image, blurred), DOUBLE)
    change = g.div(g.mul(diff, g.const(float(percent), DOUBLE)), g.const(100.0, DOUBLE))
    change = g.where(g.op("Less", change, g.const(0.0, DOUBLE)), g.op("Ceil", change), g.op("Floor", change))
    sharpened = g.op("Clip", g.add(image, g.cast(change, FLOAT)), g.const(0.0, scalar=True),
                     g.const(255.0, scalar=True))
    return g.where(g.op("Greater", g.op("Abs", diff), g.const(float(threshold), DOUBLE)), sharpened, image)


# --- finding the object ----------------------------------------------------------------------


def _colour_foreground(g: Graph, thumb: str) -> tuple[str, str, str]:
    """preprocess._colour_foreground: (foreground (h, w) bool, background grey, border spread)."""
    shape = g.op("Shape", thumb)
    height, width = item(g, shape, 1), item(g, shape, 2)
    shortest = g.cast(g.minimum(height, width), DOUBLE)
    ring = g.cast(g.maximum(g.op("Round", g.mul(g.const(preprocess._BORDER_FRACTION, DOUBLE), shortest)),
                            g.const(1.0, DOUBLE)), INT64)
    zero = g.const(0, INT64)
    three = g.const([3, -1], INT64)
    rows, cols = g.const([1], INT64), g.const([2], INT64)
    parts = [
        g.slice(thumb, zero, ring, rows),
        g.slice(thumb, g.sub(height, ring), height, rows),
        g.slice(thumb, zero, ring, cols),
        g.slice(thumb, g.sub(width, ring), width, cols),
    ]
    border = g.op("Concat", *[g.op("Reshape", part, three) for part in parts], axis=1)  # (3, n)
    background = _median(g, border)  # (3, 1)
    distance = g.op("Sqrt", g.op("ReduceSum", g.op("Pow", g.sub(thumb, g.op("Unsqueeze", background,
                                                                              g.const([2], INT64))),
                                                      g.const(2.0)), g.const([0], INT64), keepdims=0))
    border_distance = g.op("Sqrt", g.op("ReduceSum", g.op("Pow", g.sub(border, background), g.const(2.0)),
                                        g.const([0], INT64), keepdims=0))
    spread = _percentile(g, g.cast(border_distance, DOUBLE), 95.0)
    threshold = g.maximum(g.const(preprocess._MIN_DISTANCE, DOUBLE),
                          g.mul(spread, g.const(preprocess._BORDER_MARGIN, DOUBLE)))
    foreground = g.op("Greater", g.cast(distance, DOUBLE), threshold)
    luma = g.const(np.array([preprocess._GREY_WEIGHTS]), DOUBLE)
    grey = g.op("Reshape", g.op("MatMul", luma, g.cast(background, DOUBLE)), g.const([1], INT64))
    return foreground, grey, spread


def _sorted(g: Graph, values: str, axis: int = -1) -> str:
    length = g.op("Gather", g.op("Shape", values), g.const([axis], INT64))
    return g.op("TopK", values, length, axis=axis, largest=0, sorted=1, outputs=2)[0]


def _median(g: Graph, values: str) -> str:
    """np.median along the last axis of a (C, n) array, kept as (C, 1)."""
    ordered = _sorted(g, values, axis=1)
    n = g.op("Gather", g.op("Shape", values), g.const([1], INT64))
    one, two = g.const(1, INT64), g.const(2, INT64)
    low = g.op("Gather", ordered, g.div(g.sub(n, one), two), axis=1)
    high = g.op("Gather", ordered, g.div(n, two), axis=1)
    return g.div(g.add(low, high), g.const(2.0))


def _percentile(g: Graph, values: str, q: float) -> str:
    """np.percentile (linear) of a 1-D array, as shape [1]."""
    ordered = _sorted(g, values, axis=0)
    n = g.op("Shape", values)
    position = g.mul(g.cast(g.sub(n, g.const(1, INT64)), DOUBLE), g.const(q / 100.0, DOUBLE))
    below = g.op("Floor", position)
    low_index = g.cast(below, INT64)
    high_index = g.minimum(g.add(low_index, g.const(1, INT64)), g.sub(n, g.const(1, INT64)))
    low = g.op("Gather", ordered, low_index)
    high = g.op("Gather", ordered, high_index)
    fraction = g.sub(position, below)
    return g.add(low, g.mul(g.sub(high, low), fraction))


def _mass_span(g: Graph, profile: str, length: str) -> tuple[str, str]:
    """preprocess._mass_span: [start, stop) holding the central mass of a 1-D profile."""
    total = g.op("ReduceSum", profile, g.const([0], INT64), keepdims=1)
    cumulative = g.div(g.op("CumSum", profile, g.const(0, INT64, scalar=True)), total)
    def count(mask: str) -> str:  # np.searchsorted on a sorted array: how many entries pass
        return g.op("ReduceSum", g.cast(mask, INT64), g.const([0], INT64), keepdims=1)

    start = count(g.op("LessOrEqual", cumulative, g.const(preprocess._MASS_TRIM, DOUBLE)))
    stop = g.add(count(g.op("Less", cumulative, g.const(1.0 - preprocess._MASS_TRIM, DOUBLE))), g.const(1, INT64))
    stop = g.maximum(stop, g.add(start, g.const(1, INT64)))
    empty = g.op("Equal", total, g.const(0.0, DOUBLE))
    return g.where(empty, g.const(0, INT64), start), g.where(empty, length, stop)


def _paste_on_white_if(g: Graph, segmented: str, crop: str, mask: str) -> str:
    """When segmented, the crop pasted through its (bilinear-resized) mask onto white."""
    then = g.subgraph()
    shape = then.op("Shape", crop)
    height, width = item(then, shape, 1), item(then, shape, 2)
    weight = resample(then, then.op("Unsqueeze", then.mul(mask, then.const(255.0)), then.const([0], INT64)),
                      height, width, BILINEAR, reducing_gap=None)
    pasted = _on_white(then, crop, weight)
    return if_(g, segmented, then, pasted, g.subgraph(), crop, FLOAT, "pasted")


def _fashion_mnist_form(g: Graph, rgb: str, opaque: str) -> str:
    """preprocess.fashion_mnist_form for a (3, 28, 28) picture: opaque, grey, dark corners."""
    red = g.slice(rgb, g.const(0, INT64), g.const(1, INT64), g.const(0, INT64))
    grey = g.op("Not", any_(g, g.op("Not", g.op("Equal", rgb, red))))
    last = IMAGE_SIZE - 1
    corners = g.op("Reshape", g.op("Gather", g.op("Gather", red, g.const([0, last], INT64), axis=1),
                                   g.const([0, last], INT64), axis=2), g.const([1, 4], INT64))
    median = _median(g, corners)
    dark = g.op("Less", g.op("Reshape", median, g.const([1], INT64)), g.const(128.0))
    return g.and_(grey, opaque, dark)


# --- segmentation (edge_infer.segment) ----------------------------------------------------------


def _segment_or_keep(g: Graph, wants: str, thumb: str, thumb_foreground: str) -> tuple[str, str]:
    """(segmented, foreground): the garment mask on the segmenter's grid when segmentation was wanted
    and found a garment, else the thumbnail's own foreground."""
    then = g.subgraph()
    shape = then.op("Shape", thumb)
    small_h, small_w = _thumbnail_size(then, item(then, shape, 1), item(then, shape, 2), segment.SEGMENT_SIZE)
    small = resample(then, thumb, small_h, small_w, BOX, reducing_gap=2.0)
    small = gaussian_blur(then, small, preprocess._SEGMENT_BLUR)
    found, mask = garment_mask(then, small, small_h, small_w)
    chosen = if_(then, found, then.subgraph(), mask, then.subgraph(), thumb_foreground, BOOL, "garment")
    return if_many(g, wants, then, [found, chosen], g.subgraph(), [g.const(False, BOOL), thumb_foreground],
                   [BOOL, BOOL], "segment")


