"""Shared fixtures: tiny data made on the fly, never downloaded."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from edge_infer import datasets


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in IDX format (gzip when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(payload)


def synthetic_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Learnable 28x28 silhouettes: class k is a bright bar whose width and height depend on k."""
    rng = np.random.default_rng(seed)
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        height = 6 + 2 * int(label)
        width = 24 - 2 * int(label)
        top = (28 - height) // 2 + int(rng.integers(-1, 2))
        left = (28 - width) // 2 + int(rng.integers(-1, 2))
        images[i, max(0, top) : top + height, max(0, left) : left + width] = rng.integers(150, 256)
    return images


def make_dataset(folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        key = "test" if split == "test" else "train"
        write_idx(folder / datasets.FILES[f"{key}_images"], synthetic_images(labels, seed + n))
        write_idx(folder / datasets.FILES[f"{key}_labels"], labels)
    return folder


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "fmnist")


@pytest.fixture
def real_test_set():
    try:
        return datasets.load_split("test")
    except datasets.DatasetError as exc:
        pytest.skip(f"Fashion-MNIST not installed: {exc}")


def with_preprocessing(source, target, version: str):
    """A copy of ONNX `source` whose metadata claims preprocessing `version`."""
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(source))
    for prop in proto.metadata_props:
        if prop.key == "preprocessing":
            prop.value = f'"{version}"'
    onnx.save(proto, str(target))
    return target

