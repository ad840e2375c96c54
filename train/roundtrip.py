"""The photo round trip: Fashion-MNIST images rendered as photos, then preprocessed back to 28x28.

Each training image is rendered as a listing photo or as a garment on a textured floor
(`train.photo_style`) and sent back through the runtime's own robust preprocessing, so that
imperfect cuts, lost contrast and JPEG artefacts are part of what the model learns. Computed
once per seed and preprocessing version (a few minutes on 2 cores) and cached. NumPy and
Pillow only: export uses it for int8 calibration without loading TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edge_infer.classes import FOOTWEAR
from edge_infer.files import write_atomic
from edge_infer.preprocess import PREPROCESS_VERSION, robust

from .photo_style import footwear_pair, render_floor_photo, render_listing_photo

ROUNDTRIP_VERSION = "listing+floor-1"  # part of the cache key: bump when the renderers change
PAIR_VERSION = "pair-1"  # likewise for `footwear_pair`
_PAIR_STREAM = 2  # pairs (which shoes, and how each is drawn) use seed streams of their own


def _roundtrip_chunk(args) -> np.ndarray:
    """Half clean packshot-style listing photos, half garments on textured floors; each image
    first made a pair of shoes when `as_pairs`."""
    images, seed, as_pairs = args
    rng = np.random.default_rng(seed)
    renders = (render_listing_photo, render_floor_photo)
    return np.stack([robust(renders[int(rng.random() < 0.5)](footwear_pair(img, rng) if as_pairs else img, rng))
                     for img in images]).astype(np.float32)


def roundtrip_images(images_uint8: np.ndarray, seed: int, cache_dir: str | os.PathLike | None = None,
                     workers: int = 2, as_pairs: bool = False) -> np.ndarray:
    """(N, 28, 28) uint8 to (N, 28, 28, 1) float32: rendered as photos, then preprocessed back.

    `as_pairs` shows each image (a shoe) as a pair (`train.photo_style.footwear_pair`) first.
    """
    cache = None
    if cache_dir is not None:
        digest = hashlib.sha256(images_uint8.tobytes()).hexdigest()[:12]
        variant = f"-{PAIR_VERSION}" if as_pairs else ""
        cache = Path(cache_dir) / f"roundtrip-{ROUNDTRIP_VERSION}{variant}-{PREPROCESS_VERSION}-s{seed}-{digest}.npy"
        if cache.is_file():
            return np.load(cache)
    chunks = np.array_split(np.arange(len(images_uint8)), max(1, workers * 8))
    # the single views keep their seeds (and so their caches); pairs draw from their own streams
    jobs = [(images_uint8[idx], [seed, i, _PAIR_STREAM] if as_pairs else seed * 1000 + i, as_pairs)
            for i, idx in enumerate(chunks) if len(idx)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_roundtrip_chunk, jobs))
    else:
        parts = [_roundtrip_chunk(job) for job in jobs]
    result = np.concatenate(parts)[..., None]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache, lambda handle: np.save(handle, result))
    return result


def with_footwear_pairs(roundtrip: np.ndarray, images_uint8: np.ndarray, labels: np.ndarray, share: float,
                        seed: int, cache_dir: str | os.PathLike | None = None, workers: int = 2) -> np.ndarray:
    """A copy of `roundtrip` in which `share` of the shoes (a seeded draw) are photographed as pairs.

    Sellers photograph shoes as a pair, often from above; Fashion-MNIST has single shoes from the
    side, so this is the only way the model sees that view (besides the few shoes in the photo pool).
    """
    if share <= 0:
        return roundtrip
    drawn = np.random.default_rng([seed, _PAIR_STREAM]).random(len(labels)) < share
    chosen = np.flatnonzero(np.isin(labels, FOOTWEAR) & drawn)
    result = roundtrip.copy()
    if len(chosen):
        result[chosen] = roundtrip_images(images_uint8[chosen], seed, cache_dir, workers, as_pairs=True)
    return result
