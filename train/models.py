"""Keras builders for the models named in train/registry.py.

model1-3 rebuild the study's three CNNs exactly (their parameter counts are checked by a
test); `robust` is ours, designed for real photos and for the runtime (Conv, then
BatchNorm, then ReLU so the batch-norm folds into the convolution; global average pooling
instead of a flatten over NHWC feature maps; channel counts that are multiples of 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
from keras import layers, regularizers

from .registry import BLOCKS, MODELS, Recipe

INPUT_SHAPE = (28, 28, 1)


def build_model1() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(16, kernel_size=1, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(10, activation="softmax", name="probabilities"),
        ],
        name="model1",
    )


def build_model2() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax", name="probabilities"),
        ],
        name="model2",
    )


def build_model3() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.RandomFlip("horizontal"),
            layers.RandomFlip("vertical"),
            layers.Conv2D(16, (3, 3), activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(32, (3, 3), activation="relu", kernel_regularizer=regularizers.l2(0.001)),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax", name="probabilities"),
        ],
        name="model3",
    )


def _conv_bn_relu(x, filters: int, kernel: int = 3):
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _separable_bn_relu(x, filters: int):
    """MobileNet-style: depthwise 3x3-BN-ReLU, then pointwise 1x1-BN-ReLU (both batch-norms fold)."""
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    return _conv_bn_relu(x, filters, kernel=1)


def build_robust(widths: tuple[int, ...] = (32, 64, 128), block: str = "conv") -> keras.Model:
    """Two blocks per stage, max-pool between stages, GAP, Dense.

    The default (32, 32, pool, 64, 64, pool, 128, 128) of Conv-BN-ReLU blocks has 289k
    parameters and 29.1M multiply-accumulates. block="separable" makes every block after the
    first a depthwise-separable one (the first sees one grey channel, where depthwise buys
    nothing): 3.9M multiply-accumulates (7.4x fewer) and 39k parameters at the same widths.
    """
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {BLOCKS}, not {block!r}")
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    for stage, filters in enumerate(widths):
        if stage:
            x = layers.MaxPooling2D()(x)
        for position in range(2):
            first_of_model = stage == 0 and position == 0
            x = _conv_bn_relu(x, filters) if block == "conv" or first_of_model else _separable_bn_relu(x, filters)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(10)(x)
    # float32 softmax so that mixed-precision training still yields float32 probabilities
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="robust")


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "model1": build_model1,
    "model2": build_model2,
    "model3": build_model3,
    "robust": build_robust,
}


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., keras.Model]
    recipe: Recipe
    summary: str

    def build_for(self, recipe: Recipe) -> keras.Model:
        """The builder's defaults unless the recipe sets widths or block (robust only)."""
        options = {}
        if recipe.widths:
            options["widths"] = recipe.widths
        if recipe.block != "conv":
            options["block"] = recipe.block
        return self.build(**options)


# the registry's entries with their builders (train/registry.py holds the list)
REGISTRY: dict[str, ModelSpec] = {name: ModelSpec(BUILDERS[name], entry.recipe, entry.summary)
                                  for name, entry in MODELS.items()}
