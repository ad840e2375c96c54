"""edge_infer.segment's garment mask as ONNX operators (for export.e2e_graph).

The garment and background colour mixtures are fitted side by side (a leading axis of 2),
with segment's own arithmetic: k-means from brightness quantiles (ties in pixel order), a few
warm-started steps per refit, isotropic variances with a floor, log-odds box-smoothed, and the
refits in a Loop that stops where the Python loop breaks; holes filled by growing the outside
from the frame in another Loop.
"""

from __future__ import annotations

import numpy as np

from edge_infer import segment

from .onnx_graph import BOOL, DOUBLE, FLOAT, INT64, Graph, any_, select_mask, value_info


def garment_mask(g: Graph, small: str, height: str, width: str) -> tuple[str, str]:
    """segment.garment_mask on a (3, h, w) image: (found [1] bool, mask (h, w) bool).

    The garment and background mixtures are fitted side by side (a leading axis of 2), and the
    refits run in a Loop that stops where the Python loop breaks."""
    pixels = g.op("Reshape", g.op("Transpose", small, perm=[1, 2, 0]), g.const([-1, 3], INT64))  # (n, 3)
    ring = g.cast(g.maximum(g.op("Round", g.mul(g.const(segment._INSET, DOUBLE), g.cast(g.minimum(height, width),
                                                                                          DOUBLE))),
                            g.const(1.0, DOUBLE)), INT64)
    zero, step = g.const(0, INT64, scalar=True), g.const(1, INT64, scalar=True)
    rows = g.op("Unsqueeze", g.op("Range", zero, g.op("Squeeze", height), step), g.const([1], INT64))
    cols = g.op("Unsqueeze", g.op("Range", zero, g.op("Squeeze", width), step), g.const([0], INT64))
    inside = g.and_(g.op("GreaterOrEqual", rows, ring), g.op("Less", rows, g.sub(height, ring)),
                    g.op("GreaterOrEqual", cols, ring), g.op("Less", cols, g.sub(width, ring)))
    inside = g.op("Reshape", inside, g.const([-1], INT64))
    min_pixels = g.const(float(segment._MIN_PIXELS))
    too_few = g.op("Less", _count(g, inside), min_pixels)
    centres = _starting_centres(g, pixels, _members(g, inside))

    body = g.subgraph()
    names = {key: g.new_name(key) for key in ("turn", "going", "garment", "centres", "failed")}
    garment, body_centres = names["garment"], names["centres"]
    members = _members(body, garment)
    for _ in range(segment._KMEANS_STEPS):
        body_centres = _kmeans_step(body, pixels, members, body_centres)
    models = _mixtures(body, pixels, members, body_centres)
    odds = _log_likelihood(body, pixels, models)  # (2, n)
    odds = body.sub(body.op("Gather", odds, body.const(0, INT64, scalar=True), axis=0),
                    body.op("Gather", odds, body.const(1, INT64, scalar=True), axis=0))
    odds = body.op("Clip", odds, body.const(-20.0, scalar=True), body.const(20.0, scalar=True))
    grid = body.op("Reshape", odds, body.op("Concat", body.const([1, 1], INT64), height, width, axis=0))
    smoothed = _box_mean(body, grid, segment._SMOOTH_RADIUS)
    split = body.and_(body.op("Greater", body.op("Reshape", smoothed, body.const([-1], INT64)), body.const(0.0)),
                      inside)
    too_small = body.op("Less", _count(body, split), min_pixels)
    same = body.op("Not", any_(body, body.op("Xor", split, garment)))
    going = body.op("Not", body.op("Or", too_small, same))
    outputs = [
        (body.op("Squeeze", going), BOOL, []),
        (select_mask(body, too_small, garment, split), BOOL, None),
        (body_centres, FLOAT, None),
        (too_small, BOOL, [1]),
    ]
    outs = [(body.rename(value, g.new_name("out")), dtype, shape) for value, dtype, shape in outputs]
    body_graph = body.to_graph(
        "refit", [value_info(names["turn"], INT64, []), value_info(names["going"], BOOL, []),
                  value_info(garment, BOOL, None), value_info(names["centres"], FLOAT, None),
                  value_info(names["failed"], BOOL, [1])],
        [value_info(name, dtype, shape) for name, dtype, shape in outs])
    final, _, failed = g.op("Loop", g.const(segment._ROUNDS, INT64, scalar=True),
                               g.op("Squeeze", g.op("Not", too_few)), inside, centres,
                               g.const(False, BOOL), body=body_graph, outputs=3)
    failed = g.op("Or", failed, too_few)
    mask = g.op("Reshape", final, g.op("Concat", height, width, axis=0))
    return g.op("Not", failed), _fill_holes(g, mask)


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
    """segment._fit_mixture's result after the k-means steps: (centres, variances, weights)."""
    distances, onehot = _assignment(g, pixels, members, centres)
    counts = g.op("ReduceSum", onehot, g.const([1], INT64), keepdims=0)  # (2, k)
    spread = g.op("ReduceSum", g.mul(onehot, distances), g.const([1], INT64), keepdims=0)
    variances = g.maximum(g.div(g.div(spread, g.maximum(counts, g.const(1.0))), g.const(3.0)),
                          g.const(segment._MIN_VARIANCE))
    total = g.op("ReduceSum", counts, g.const([1], INT64), keepdims=1)
    weights = g.div(g.add(counts, g.const(1.0)), g.add(total, g.const(float(segment._COMPONENTS))))
    return centres, variances, weights


def _log_likelihood(g: Graph, pixels: str, model) -> str:
    """Per pixel log-likelihood under each of the two mixtures: (2, n)."""
    centres, variances, weights = model
    level = g.op("Unsqueeze", g.sub(g.op("Log", weights), g.mul(g.const(1.5), g.op("Log", variances))),
                 g.const([1], INT64))  # (2, 1, k)
    scale = g.op("Unsqueeze", g.mul(g.const(2.0), variances), g.const([1], INT64))
    terms = g.sub(level, g.div(_squared_distances(g, pixels, centres), scale))  # (2, n, k)
    top = g.op("ReduceMax", terms, axes=[2], keepdims=1)
    spread = g.op("ReduceSum", g.op("Exp", g.sub(terms, top)), g.const([2], INT64), keepdims=0)
    return g.add(g.op("Squeeze", top, g.const([2], INT64)), g.op("Log", spread))


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
