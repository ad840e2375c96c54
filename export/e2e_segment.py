"""edge_infer.segment's garment mask as ONNX operators (for export.e2e_graph).

The garment and background colour mixtures are fitted side by side (a leading axis of 2),
with segment's own arithmetic: on the half-size grid (2x2 means), k-means from brightness
quantiles (ties in pixel order), a few warm-started steps per refit, full covariances with a
floor on the diagonal inverted by cofactors, log-odds box-smoothed, and the refits in a Loop
that stops where the Python loop breaks; then the last mixtures split the full grid, and holes
are filled by growing the outside from the frame in another Loop.
"""

from __future__ import annotations

import numpy as np

from edge_infer import segment

from .onnx_graph import BOOL, DOUBLE, FLOAT, INT64, Graph, any_, if_many, select_mask, value_info

_PAIRS = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]  # a symmetric 3x3's distinct entries


def garment_mask(g: Graph, small: str, height: str, width: str) -> tuple[str, str]:
    """segment.garment_mask on a (3, h, w) image: (found [1] bool, mask (h, w) bool; any mask
    when not found)."""
    two = g.const([2], INT64)
    half_h, half_w = g.op("Div", height, two), g.op("Div", width, two)
    # too small a half-size grid: segment gives up before fitting (and the graph would meet empty tensors)
    half_inside = _inside(g, half_h, half_w)
    room = g.op("Squeeze", g.op("Not", g.op("Less", _count(g, half_inside), g.const(float(segment._MIN_PIXELS)))))
    then = g.subgraph()
    half = then.op("Squeeze", then.op("AveragePool", then.op("Unsqueeze", small, then.const([0], INT64)),
                                      kernel_shape=[2, 2], strides=[2, 2]), then.const([0], INT64))
    fitted, models = _fit_split(then, _pixels(then, half), half_inside, half_h, half_w)
    split = _split(then, _pixels(then, small), models, _inside(then, height, width), height, width)
    failed = then.op("Or", then.op("Not", fitted),
                     then.op("Less", _count(then, split), then.const(float(segment._MIN_PIXELS))))
    mask = _fill_holes(then, then.op("Reshape", split, then.op("Concat", height, width, axis=0)))
    otherwise = g.subgraph()
    return if_many(g, room, then, [then.op("Not", failed), mask], otherwise,
                   [otherwise.const([False], BOOL), otherwise.const([[False]], BOOL)], [BOOL, BOOL], "segmenter")


def _pixels(g: Graph, image: str) -> str:
    """(3, h, w) to (h * w, 3), in segment's pixel order."""
    return g.op("Reshape", g.op("Transpose", image, perm=[1, 2, 0]), g.const([-1, 3], INT64))


def _inside(g: Graph, height: str, width: str) -> str:
    """segment._inside, flattened: (h * w,) bool."""
    ring = g.cast(g.maximum(g.op("Round", g.mul(g.const(segment._INSET, DOUBLE), g.cast(g.minimum(height, width),
                                                                                          DOUBLE))),
                            g.const(1.0, DOUBLE)), INT64)
    zero, step = g.const(0, INT64, scalar=True), g.const(1, INT64, scalar=True)
    rows = g.op("Unsqueeze", g.op("Range", zero, g.op("Squeeze", height), step), g.const([1], INT64))
    cols = g.op("Unsqueeze", g.op("Range", zero, g.op("Squeeze", width), step), g.const([0], INT64))
    inside = g.and_(g.op("GreaterOrEqual", rows, ring), g.op("Less", rows, g.sub(height, ring)),
                    g.op("GreaterOrEqual", cols, ring), g.op("Less", cols, g.sub(width, ring)))
    return g.op("Reshape", inside, g.const([-1], INT64))


def _fit_split(g: Graph, pixels: str, inside: str, height: str, width: str) -> tuple[str, tuple[str, str, str]]:
    """segment._fit_split on a grid whose `inside` has room for a garment (garment_mask checks it
    first): (fitted [1] bool, the last mixtures (centres, precisions, levels))."""
    min_pixels = g.const(float(segment._MIN_PIXELS))
    centres = _starting_centres(g, pixels, _members(g, inside))
    k = segment._COMPONENTS

    body = g.subgraph()
    names = {key: g.new_name(key) for key in ("turn", "going", "garment", "centres", "precisions", "levels",
                                              "failed")}
    garment, body_centres = names["garment"], names["centres"]
    members = _members(body, garment)
    for _ in range(segment._KMEANS_STEPS):
        body_centres = _kmeans_step(body, pixels, members, body_centres)
    models = _mixtures(body, pixels, members, body_centres)
    split = _split(body, pixels, models, inside, height, width)
    too_small = body.op("Less", _count(body, split), min_pixels)
    same = body.op("Not", any_(body, body.op("Xor", split, garment)))
    going = body.op("Not", body.op("Or", too_small, same))
    outputs = [
        (body.op("Squeeze", going), BOOL, []),
        (select_mask(body, too_small, garment, split), BOOL, None),
        (models[0], FLOAT, None),
        (models[1], FLOAT, None),
        (models[2], FLOAT, None),
        (too_small, BOOL, [1]),
    ]
    outs = [(body.rename(value, g.new_name("out")), dtype, shape) for value, dtype, shape in outputs]
    body_graph = body.to_graph(
        "refit", [value_info(names["turn"], INT64, []), value_info(names["going"], BOOL, []),
                  value_info(garment, BOOL, None), value_info(names["centres"], FLOAT, None),
                  value_info(names["precisions"], FLOAT, None), value_info(names["levels"], FLOAT, None),
                  value_info(names["failed"], BOOL, [1])],
        [value_info(name, dtype, shape) for name, dtype, shape in outs])
    _, centres, precisions, levels, failed = g.op(
        "Loop", g.const(segment._ROUNDS, INT64, scalar=True), g.const(True, BOOL, scalar=True), inside,
        centres, g.const(np.zeros((2, k, 3, 3), np.float32)), g.const(np.zeros((2, k), np.float32)),
        g.const(False, BOOL), body=body_graph, outputs=5)
    return g.op("Not", failed), (centres, precisions, levels)


def _split(g: Graph, pixels: str, models, inside: str, height: str, width: str) -> str:
    """segment._split, flattened: (n,) bool."""
    odds = _log_likelihood(g, pixels, models)  # (2, n)
    odds = g.sub(g.op("Gather", odds, g.const(0, INT64, scalar=True), axis=0),
                 g.op("Gather", odds, g.const(1, INT64, scalar=True), axis=0))
    odds = g.op("Clip", odds, g.const(-20.0, scalar=True), g.const(20.0, scalar=True))
    grid = g.op("Reshape", odds, g.op("Concat", g.const([1, 1], INT64), height, width, axis=0))
    smoothed = _box_mean(g, grid, segment._SMOOTH_RADIUS)
    return g.and_(g.op("Greater", g.op("Reshape", smoothed, g.const([-1], INT64)), g.const(0.0)), inside)


def _count(g: Graph, mask: str) -> str:
    return g.op("ReduceSum", g.cast(mask, FLOAT), g.const([0], INT64), keepdims=1)


def _members(g: Graph, garment: str) -> str:
    """(2, n, 1) float weights: the garment's pixels, then the background's."""
    both = g.op("Concat", g.op("Unsqueeze", garment, g.const([0], INT64)),
                g.op("Unsqueeze", g.op("Not", garment), g.const([0], INT64)), axis=0)
    return g.op("Unsqueeze", g.cast(both, FLOAT), g.const([2], INT64))


def _squared_distances(g: Graph, x: str, centres: str) -> str:
    """|x - c|^2 as segment computes it, for (n, 3) pixels and (2, k, 3) centres: (2, n, k)."""
    xx = g.op("ReduceSum", g.mul(x, x), g.const([1], INT64), keepdims=1)  # (n, 1)
    cc = g.op("Unsqueeze", g.op("ReduceSum", g.mul(centres, centres), g.const([2], INT64), keepdims=0),
              g.const([1], INT64))  # (2, 1, k)
    cross = g.op("MatMul", x, g.op("Transpose", centres, perm=[0, 2, 1]))  # (2, n, k)
    return g.maximum(g.add(g.sub(xx, g.mul(g.const(2.0), cross)), cc), g.const(0.0))


def _starting_centres(g: Graph, pixels: str, members: str) -> str:
    """segment._fit_mixture's start: members' pixels at brightness quantiles, ties in pixel
    order (2, k, 3)."""
    k = segment._COMPONENTS
    brightness = g.op("ReduceSum", pixels, g.const([1], INT64), keepdims=0)  # (n,)
    member = g.op("Squeeze", members, g.const([2], INT64))  # (2, n)
    key = g.where(g.cast(member, BOOL), g.op("Unsqueeze", brightness, g.const([0], INT64)), g.const(np.inf))
    n = g.op("Gather", g.op("Shape", key), g.const([1], INT64))
    order = g.op("TopK", key, n, axis=1, largest=0, sorted=1, outputs=2)[1]  # (2, n)
    count = g.cast(g.op("ReduceSum", member, g.const([1], INT64), keepdims=1), DOUBLE)  # (2, 1)
    # np.linspace(0, m - 1, k): j * ((m - 1) / (k - 1)), the last one exactly m - 1
    step = g.div(g.sub(count, g.const(1.0, DOUBLE)), g.const(float(k - 1), DOUBLE))
    positions = g.cast(g.op("Floor", g.mul(g.const(np.arange(k), DOUBLE), step)), INT64)  # (2, k)
    positions = g.where(g.op("Equal", g.const(np.arange(k), INT64), g.const(k - 1, INT64)),
                        g.cast(g.sub(count, g.const(1.0, DOUBLE)), INT64), positions)
    chosen = g.op("GatherElements", order, positions, axis=1)  # (2, k) pixel indices
    return g.op("Gather", pixels, chosen, axis=0)  # (2, k, 3)


def _assignment(g: Graph, pixels: str, members: str, centres: str) -> tuple[str, str]:
    """Distances (2, n, k) and the members' nearest centre, one-hot (2, n, k)."""
    distances = _squared_distances(g, pixels, centres)
    nearest = g.op("ArgMin", distances, axis=2, keepdims=1)  # (2, n, 1), first of equals as NumPy
    onehot = g.cast(g.op("Equal", nearest, g.const(np.arange(segment._COMPONENTS), INT64)), FLOAT)
    return distances, g.mul(onehot, members)


def _kmeans_step(g: Graph, pixels: str, members: str, centres: str) -> str:
    _, onehot = _assignment(g, pixels, members, centres)
    counts = g.op("Unsqueeze", g.op("ReduceSum", onehot, g.const([1], INT64), keepdims=0), g.const([2], INT64))
    sums = g.op("MatMul", g.op("Transpose", onehot, perm=[0, 2, 1]), pixels)  # (2, k, 3)
    return g.where(g.op("Greater", counts, g.const(0.0)), g.div(sums, g.maximum(counts, g.const(1.0))), centres)


def _mixtures(g: Graph, pixels: str, members: str, centres: str):
    """segment._fit_mixture's result after the k-means steps: centres (2, k, 3), precisions
    (2, k, 3, 3) and levels (2, k)."""
    _, onehot = _assignment(g, pixels, members, centres)  # (2, n, k)
    counts = g.op("ReduceSum", onehot, g.const([1], INT64), keepdims=0)  # (2, k)
    offsets = g.sub(pixels, g.op("MatMul", onehot, centres))  # (2, n, 3): each member minus its centre
    column = [g.op("Gather", offsets, g.const(i, INT64, scalar=True), axis=2) for i in range(3)]  # (2, n) each
    products = g.op("Concat", *[g.op("Unsqueeze", g.mul(column[i], column[j]), g.const([2], INT64))
                                for i, j in _PAIRS], axis=2)  # (2, n, 6)
    # summed in float64 like NumPy's bincount, then divided and rounded to float32 as segment does
    sums = g.op("MatMul", g.cast(g.op("Transpose", onehot, perm=[0, 2, 1]), DOUBLE), g.cast(products, DOUBLE))
    moments = g.cast(g.div(sums, g.op("Unsqueeze", g.cast(g.maximum(counts, g.const(1.0)), DOUBLE),
                                      g.const([2], INT64))), FLOAT)  # (2, k, 6)
    moments = g.add(moments, g.const(np.array([1, 0, 0, 1, 0, 1], np.float32) * segment._MIN_VARIANCE))
    precisions, determinants = _inverse_3x3(g, moments)
    total = g.op("ReduceSum", counts, g.const([1], INT64), keepdims=1)
    weights = g.div(g.add(counts, g.const(1.0)), g.add(total, g.const(float(segment._COMPONENTS))))
    levels = g.sub(g.op("Log", weights), g.mul(g.const(0.5), g.op("Log", determinants)))
    return centres, precisions, levels


def _inverse_3x3(g: Graph, entries: str) -> tuple[str, str]:
    """segment.inverse_3x3 on (..., 6) symmetric entries (00 01 02 11 12 22): inverses (..., 3, 3)
    and determinants (...)."""
    a, b, c, d, e, f = (g.op("Gather", entries, g.const(i, INT64, scalar=True), axis=-1) for i in range(6))
    cofactors = [g.sub(g.mul(d, f), g.mul(e, e)), g.sub(g.mul(c, e), g.mul(b, f)), g.sub(g.mul(b, e), g.mul(c, d)),
                 g.sub(g.mul(a, f), g.mul(c, c)), g.sub(g.mul(b, c), g.mul(a, e)), g.sub(g.mul(a, d), g.mul(b, b))]
    determinants = g.add(g.add(g.mul(a, cofactors[0]), g.mul(b, cofactors[1])), g.mul(c, cofactors[2]))
    stacked = g.op("Concat", *[g.op("Unsqueeze", value, g.const([-1], INT64)) for value in cofactors], axis=-1)
    inverse = g.div(stacked, g.op("Unsqueeze", determinants, g.const([-1], INT64)))
    full = g.op("Gather", inverse, g.const([0, 1, 2, 1, 3, 4, 2, 4, 5], INT64), axis=-1)  # (..., 9)
    shape = g.op("Concat", g.op("Shape", determinants), g.const([3, 3], INT64), axis=0)
    return g.op("Reshape", full, shape), determinants


def _log_likelihood(g: Graph, pixels: str, model) -> str:
    """Per pixel log-likelihood under each of the two mixtures: (2, n)."""
    centres, precisions, levels = model

    def per_component(tensor: str) -> str:  # (2, k) to (2, k, 1): broadcast along the pixels
        return g.op("Unsqueeze", tensor, g.const([2], INT64))

    def channel(i: int) -> str:  # x - c for colour i, (2, k, n): pixels last, as segment.py lays it out
        column = g.op("Gather", pixels, g.const(i, INT64, scalar=True), axis=1)  # (n,)
        return g.sub(column, per_component(g.op("Gather", centres, g.const(i, INT64, scalar=True), axis=2)))

    d0, d1, d2 = (channel(i) for i in range(3))

    def entry(i: int, j: int) -> str:  # P[i, j] of each component, (2, k, 1)
        return per_component(g.op("Gather", g.op("Gather", precisions, g.const(i, INT64, scalar=True), axis=2),
                                  g.const(j, INT64, scalar=True), axis=2))

    def term(i: int, j: int, a: str, b: str) -> str:
        return g.mul(g.mul(entry(i, j), a), b)

    # segment._log_likelihood's order of operations, so that both round alike
    diagonal = g.add(g.add(term(0, 0, d0, d0), term(1, 1, d1, d1)), term(2, 2, d2, d2))
    cross = g.add(g.add(term(0, 1, d0, d1), term(0, 2, d0, d2)), term(1, 2, d1, d2))
    mahalanobis = g.add(diagonal, g.mul(g.const(2.0), cross))
    terms = g.sub(per_component(levels), g.mul(g.const(0.5), g.maximum(mahalanobis, g.const(0.0))))  # (2, k, n)
    top = g.op("ReduceMax", terms, axes=[1], keepdims=1)
    spread = g.op("ReduceSum", g.op("Exp", g.sub(terms, top)), g.const([1], INT64), keepdims=0)
    return g.add(g.op("Squeeze", top, g.const([1], INT64)), g.op("Log", spread))


def _box_mean(g: Graph, grid: str, radius: int) -> str:
    """segment._box_mean on a (1, 1, h, w) grid: edges repeated, (2r+1)^2 mean."""
    padded = g.op("Pad", grid, g.const([0, 0, radius, radius, 0, 0, radius, radius], INT64), mode="edge")
    size = 2 * radius + 1
    return g.op("AveragePool", padded, kernel_shape=[size, size])


def _fill_holes(g: Graph, mask: str) -> str:
    """segment.fill_holes: grow 'outside' from the frame through background until it stops."""
    background = g.op("Pad", g.cast(g.op("Not", mask), FLOAT), g.const([1, 1, 1, 1], INT64),
                      g.const(1.0, scalar=True))
    background = g.op("Unsqueeze", background, g.const([0, 1], INT64))  # (1, 1, h+2, w+2)
    frame = g.op("Pad", g.mul(g.slice(background, g.const([1, 1], INT64), g.const([-1, -1], INT64),
                                      g.const([2, 3], INT64)), g.const(0.0)),
                 g.const([0, 0, 1, 1, 0, 0, 1, 1], INT64), g.const(1.0, scalar=True))
    body = g.subgraph()
    iteration, keep_going, outside = g.new_name("iteration"), g.new_name("keep_going"), g.new_name("outside")
    grown = outside
    for _ in range(4):  # a few growth steps per turn: growing past the fixed point changes nothing
        vertical = body.op("MaxPool", grown, kernel_shape=[3, 1], pads=[1, 0, 1, 0])
        horizontal = body.op("MaxPool", grown, kernel_shape=[1, 3], pads=[0, 1, 0, 1])
        grown = body.mul(body.maximum(vertical, horizontal), background)
    changed = body.op("ReduceMax", body.op("Abs", body.sub(grown, outside)), keepdims=0)
    again = body.rename(body.cast(changed, BOOL), g.new_name("again"))
    result = body.rename(grown, g.new_name("grown"))
    body_graph = body.to_graph(
        "grow", [value_info(iteration, INT64, []), value_info(keep_going, BOOL, []), value_info(outside, FLOAT, None)],
        [value_info(again, BOOL, []), value_info(result, FLOAT, None)])
    final = g.op("Loop", g.const(10_000, INT64, scalar=True), g.const(True, BOOL, scalar=True), frame,
                 body=body_graph)
    interior = g.slice(final, g.const([1, 1], INT64), g.const([-1, -1], INT64), g.const([2, 3], INT64))
    return g.op("Not", g.cast(g.op("Squeeze", interior, g.const([0, 1], INT64)), BOOL))
