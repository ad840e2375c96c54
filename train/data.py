"""Fashion-MNIST arrays for training: a seeded validation split, the test set kept apart."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_infer import datasets
from edge_infer.datasets import to_model_input

VALIDATION_SIZE = 5000


@dataclass(frozen=True)
class TrainingData:
    x_train: np.ndarray  # (N, 28, 28, 1) float32 in [0, 1]
    y_train: np.ndarray  # (N,) int
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checksums: dict
    source: str


def split_validation(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): a fixed-seed permutation, so runs share one split."""
    if not 0 < size < n:
        raise ValueError(f"validation size {size} must be between 1 and {n - 1}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[size:]), np.sort(order[:size])


def load(data_dir=None, validation_size: int = VALIDATION_SIZE, split_seed: int = 0,
         limit: int | None = None, allow_download: bool = True) -> TrainingData:
    """Load train and test; `limit` keeps only the first images of each (for tests)."""
    folder = datasets.ensure_data_dir(data_dir, allow_download=allow_download)
    train = datasets.load_split("train", folder)
    test = datasets.load_split("test", folder)
    train_images, train_labels = train.images, train.labels
    test_images, test_labels = test.images, test.labels
    if limit:
        train_images, train_labels = train_images[:limit], train_labels[:limit]
        test_images, test_labels = test_images[:limit], test_labels[:limit]
    validation_size = min(validation_size, max(1, len(train_images) // 5))  # small data: keep 80% to train
    keep, held = split_validation(len(train_images), validation_size, split_seed)
    return TrainingData(
        x_train=to_model_input(train_images[keep]),
        y_train=train_labels[keep].astype(np.int64),
        x_val=to_model_input(train_images[held]),
        y_val=train_labels[held].astype(np.int64),
        x_test=to_model_input(test_images),
        y_test=test_labels.astype(np.int64),
        checksums=datasets.file_checksums(folder),
        source=str(folder),
    )
