"""Corruption training: AugMix-style mixtures of the damage the evaluation suite measures.

AugMix (Hendrycks et al. 2020, "AugMix: A Simple Data Processing Method to Improve Robustness
and Uncertainty", arXiv:1912.02781) mixes a few short chains of random operations with
Dirichlet weights and blends the result with the original image. Its gains on CIFAR-10-C came
from operations *unlike* the test corruptions. Here, as the phone-photo issue asks, the
operations are of the same kinds as the suite's weakest measures (wide rotation, shear,
inversion, inverted bands, drawn lines and zigzags, salt-and-pepper noise, pixelation), written
independently in TensorFlow with their own random ranges. So the suite's mean partly measures
"trained for it": `benchmarks/corruption_split.py` reports the kinds imitated here
(`train.registry.CORRUPTION_MIX_KINDS`) apart from the others, and the kinds not trained (fog,
spatter, dotted lines, motion blur, JPEG, ...) are the fairer read of what it buys.

Every operation maps a batch (B, 28, 28, 1) float32 in [0, 1] to the same shape, drawing its
random parameters per image; the garment is bright on black, as the runtime feeds the model.
"""

from __future__ import annotations

import math

import tensorflow as tf

SIZE = 28
_CENTRE = (SIZE - 1) / 2.0


def _uniform(batch, low, high):
    return tf.random.uniform([batch], low, high)


def _signs(batch):
    return tf.where(tf.random.uniform([batch]) < 0.5, -1.0, 1.0)


def _linear_warp(images, a, b, c, d):
    """Apply the per-image linear map [[a, b], [c, d]] (output to input coordinates) about the centre."""
    zeros = tf.zeros_like(a)
    tx = _CENTRE - a * _CENTRE - b * _CENTRE
    ty = _CENTRE - c * _CENTRE - d * _CENTRE
    transforms = tf.stack([a, b, tx, c, d, ty, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[SIZE, SIZE], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT",
    )


def rotate_wide(images):
    """Rotation by 10 to 60 degrees either way (the shape augmentation stops at 10)."""
    batch = tf.shape(images)[0]
    angle = _uniform(batch, 10.0, 60.0) * _signs(batch) * math.pi / 180.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    return _linear_warp(images, cos, -sin, sin, cos)


def shear(images):
    """Shear along rows or columns, up to 0.8 pixels per pixel either way."""
    batch = tf.shape(images)[0]
    factor = _uniform(batch, 0.1, 0.8) * _signs(batch)
    along_rows = tf.random.uniform([batch]) < 0.5
    zeros, ones = tf.zeros([batch]), tf.ones([batch])
    return _linear_warp(images, ones, tf.where(along_rows, factor, zeros), tf.where(along_rows, zeros, factor), ones)


def invert(images):
    """A negative, fully or nearly so (a half blend is flat grey and teaches nothing)."""
    batch = tf.shape(images)[0]
    alpha = tf.reshape(_uniform(batch, 0.7, 1.0), [-1, 1, 1, 1])
    return (1.0 - alpha) * images + alpha * (1.0 - images)


def _grid():
    rows = tf.reshape(tf.range(SIZE, dtype=tf.float32), [1, SIZE, 1, 1])
    cols = tf.reshape(tf.range(SIZE, dtype=tf.float32), [1, 1, SIZE, 1])
    return rows, cols


def inverted_band(images):
    """A band 2 to 12 pixels wide, across or down, inverted."""
    batch = tf.shape(images)[0]
    rows, cols = _grid()
    width = tf.reshape(_uniform(batch, 2.0, 12.0), [-1, 1, 1, 1])
    start = tf.reshape(_uniform(batch, -2.0, SIZE - 2.0), [-1, 1, 1, 1])
    across = tf.reshape(tf.random.uniform([batch]) < 0.5, [-1, 1, 1, 1])
    position = tf.where(across, rows, cols)
    inside = (position >= start) & (position < start + width)
    return tf.where(inside, 1.0 - images, images)


def lines(images):
    """One or two bright lines at any angle, straight or zigzag, 1 to 2 pixels wide."""
    batch = tf.shape(images)[0]
    rows, cols = _grid()
    ink = tf.zeros_like(images)
    for line in range(2):
        theta = tf.reshape(_uniform(batch, 0.0, math.pi), [-1, 1, 1, 1])
        offset = tf.reshape(_uniform(batch, -10.0, 10.0), [-1, 1, 1, 1])
        amplitude = tf.reshape(tf.where(tf.random.uniform([batch]) < 0.5, 0.0, _uniform(batch, 1.0, 3.5)),
                               [-1, 1, 1, 1])
        period = tf.reshape(_uniform(batch, 4.0, 9.0), [-1, 1, 1, 1])
        width = tf.reshape(_uniform(batch, 1.0, 2.0), [-1, 1, 1, 1])
        along = (cols - _CENTRE) * tf.cos(theta) + (rows - _CENTRE) * tf.sin(theta)
        across = -(cols - _CENTRE) * tf.sin(theta) + (rows - _CENTRE) * tf.cos(theta) - offset
        phase = tf.math.floormod(along / period, 1.0)
        wave = amplitude * (4.0 * tf.abs(phase - 0.5) - 1.0)  # triangle wave in [-amplitude, amplitude]
        stroke = tf.clip_by_value(width / 2.0 + 0.5 - tf.abs(across - wave), 0.0, 1.0)
        drawn = tf.reshape(tf.random.uniform([batch]) < (1.0 if line == 0 else 0.5), [-1, 1, 1, 1])
        ink = tf.maximum(ink, tf.where(drawn, stroke, 0.0))
    return tf.minimum(1.0, images + ink)


def salt_and_pepper(images):
    """Up to 15% of pixels set to black or white."""
    batch = tf.shape(images)[0]
    fraction = tf.reshape(_uniform(batch, 0.02, 0.15), [-1, 1, 1, 1])
    hit = tf.random.uniform(tf.shape(images)) < fraction
    salt = tf.cast(tf.random.uniform(tf.shape(images)) < 0.5, tf.float32)
    return tf.where(hit, salt, images)


def pixelate(images):
    """Down to 9 to 16 pixels a side (area average) and back up with nearest neighbour."""
    side = tf.random.uniform([], 9, 17, dtype=tf.int32)  # one size per batch: resize wants a static rank
    small = tf.image.resize(images, [side, side], method="area")
    return tf.image.resize(small, [SIZE, SIZE], method="nearest")


OPERATIONS = (rotate_wide, shear, invert, inverted_band, lines, salt_and_pepper, pixelate)


def _random_operation(images):
    """Each image through one of the operations, picked at random per image."""
    candidates = tf.stack([operation(images) for operation in OPERATIONS], axis=1)  # (B, ops, 28, 28, 1)
    choice = tf.random.uniform([tf.shape(images)[0]], 0, len(OPERATIONS), dtype=tf.int32)
    return tf.gather(candidates, choice, batch_dims=1)


def augmix(images, chains: int = 2):
    """Dirichlet-weighted mixture of `chains` chains of one random operation each (AugMix's chains
    run 1 to 3 deep; one keeps the cost at +6 ms a batch), blended with the original.

    The original keeps a weight in [0, 0.5) so the damage always dominates (AugMix draws it from
    Beta(1, 1); the suite's strong severities are what the model fails on, so more of them).
    """
    batch = tf.shape(images)[0]
    gammas = tf.random.gamma([chains, batch], alpha=1.0)  # Dirichlet(1, ..., 1) by normalised gammas
    weights = gammas / tf.reduce_sum(gammas, axis=0, keepdims=True)
    mixed = tf.zeros_like(images)
    for chain in range(chains):
        mixed += tf.reshape(weights[chain], [-1, 1, 1, 1]) * _random_operation(images)
    original = tf.reshape(_uniform(batch, 0.0, 0.5), [-1, 1, 1, 1])
    return tf.clip_by_value(original * images + (1.0 - original) * mixed, 0.0, 1.0)
