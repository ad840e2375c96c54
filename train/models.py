"""Model builders by name, and how each is trained.

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

INPUT_SHAPE = (28, 28, 1)


@dataclass(frozen=True)
class Recipe:
    """How a model is trained; the defaults are the study's."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"  # "adam" (Keras default lr) or "sgd-onecycle"
    peak_learning_rate: float = 0.1
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    reduce_lr_on_plateau: bool = False
    augment: str = "none"  # "none", "basic" (per-batch ops) or "photo" (basic + photo round trip)
    vertical_flip: bool = False  # only for ablations: the study flipped garments upside down
    final_augment_strength: float = 1.0  # augmentation eases to this over the last 30% of epochs (train.fit)
    heavy_fraction: float = 1.0  # share of images augmented photo-style; the rest get flip, shift, erasing
    photos: str | None = None  # labelled real photos mixed into training: "pool" (train/photo_pool), a folder or .npz
    photos_per_class: int = 1500  # each class's photos are repeated towards this many samples per epoch
    widths: tuple[int, ...] | None = None  # robust only: channels per stage (builder default if None)
    mixed_bfloat16: bool = False
    study_params: int | None = None
    study_test_accuracy: float | None = None


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


def _conv_bn_relu(x, filters: int):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def build_robust(widths: tuple[int, ...] = (32, 64, 128)) -> keras.Model:
    """Two Conv-BN-ReLU blocks per stage, max-pool between stages, GAP, Dense.

    The default (32, 32, pool, 64, 64, pool, 128, 128) has 289k parameters.
    """
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    for stage, filters in enumerate(widths):
        if stage:
            x = layers.MaxPooling2D()(x)
        x = _conv_bn_relu(x, filters)
        x = _conv_bn_relu(x, filters)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(10)(x)
    # float32 softmax so that mixed-precision training still yields float32 probabilities
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="robust")


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., keras.Model]
    recipe: Recipe
    summary: str

    def build_for(self, recipe: Recipe) -> keras.Model:
        return self.build(widths=recipe.widths) if recipe.widths else self.build()


REGISTRY: dict[str, ModelSpec] = {
    "model1": ModelSpec(
        build_model1,
        Recipe(epochs=10, study_params=50_394, study_test_accuracy=0.8305),
        "study baseline: one 1x1 conv, max-pool, dense 16",
    ),
    "model2": ModelSpec(
        build_model2,
        Recipe(epochs=10, study_params=225_034, study_test_accuracy=0.9125),
        "study: two 3x3 convs with pooling, dense 128",
    ),
    "model3": ModelSpec(
        build_model3,
        Recipe(epochs=10, reduce_lr_on_plateau=True, study_params=56_778, study_test_accuracy=0.8859),
        "study 'robust': random flips, batch-norm, L2, dropout, LR reduction",
    ),
    "robust": ModelSpec(
        build_robust,
        Recipe(
            epochs=90,
            batch_size=128,
            optimizer="sgd-onecycle",
            peak_learning_rate=0.1,
            weight_decay=5e-4,
            label_smoothing=0.1,
            augment="photo",
            final_augment_strength=0.25,
            heavy_fraction=0.5,  # 50 epochs with every image heavy: 93.46% clean; 60 epochs at 0.5: 94.01%
            mixed_bfloat16=True,
            photos="pool",
        ),
        "ours: Conv-BN-ReLU pairs with max-pooling between stages, global pooling, photo-style augmentation",
    ),
}
