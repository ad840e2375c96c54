"""Corruptions of 28x28 Fashion-MNIST images at five severities, for robustness evaluation.

Modelled on MNIST-C (Mu and Gilmer 2019, "MNIST-C: A Robustness Benchmark for Computer
Vision", arXiv:1906.02337) and Fashion-MNIST-C (Weiss and Tonella 2022, "Simple Techniques
Work Surprisingly Well for Neural Network Test Prioritization and Active Learning"), which
in turn follow ImageNet-C (Hendrycks and Dietterich 2019). Those benchmarks fix one
severity per corruption; here every corruption has severities 1 (mild) to 5 (strong), with
parameters taken from MNIST-C / ImageNet-C / CIFAR-10-C where they suit 28x28 images and
scaled down where the ImageNet values would wipe a 28-pixel garment out.

Only NumPy and Pillow are used (never TensorFlow, SciPy, OpenCV or scikit-image), and
whole batches are processed at once wherever NumPy allows.

    >>> from edge_infer.evaluation.corruptions import CORRUPTIONS, corrupt
    >>> noisy = corrupt(images, "shot_noise", severity=3, seed=0)   # doctest: +SKIP

`corrupt` takes uint8 images, (N, 28, 28) or one (28, 28), and returns uint8 of the same
shape. Each registered corruption is a pure function
``fn(x: float32 (N, 28, 28) in [0, 1], severity: int, rng: np.random.Generator) -> float``;
`corrupt` clips its result to [0, 1] and rounds it to uint8. The random draws are made for
the batch as a whole, so the result for one image depends on the seed and on the batch it
was corrupted in (the same batch and seed always give the same output).
"""

from __future__ import annotations

import io
import zlib
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image

SIZE = 28
SEVERITIES = (1, 2, 3, 4, 5)
_CENTRE = (SIZE - 1) / 2.0  # 13.5: the centre of the pixel grid, as in MNIST-C's affine maps
_CHUNK = 2048  # images per chunk in the memory-hungry vectorised steps

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


# ----------------------------------------------------------------------------- helpers


def _param(values: tuple, severity: int):
    return values[severity - 1]


def _random_signs(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=n)


def _reflect_index(j: int, size: int) -> int:
    """Half-sample symmetric reflection (..., 1, 0 | 0, 1, ..., size-1 | size-1, ...)."""
    period = 2 * size
    j %= period
    return j if j < size else period - 1 - j


@lru_cache(maxsize=None)
def _blur_matrix(sigma: float, reflect: bool = False) -> np.ndarray:
    """(28, 28) matrix of a 1-D Gaussian blur (truncated at 4 sigma); zero or reflect edges."""
    radius = max(1, int(np.ceil(4.0 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    matrix = np.zeros((SIZE, SIZE), dtype=np.float64)
    for i in range(SIZE):
        for offset, weight in zip(offsets, weights):
            j = i + int(offset)
            if reflect:
                matrix[i, _reflect_index(j, SIZE)] += weight
            elif 0 <= j < SIZE:
                matrix[i, j] += weight
    matrix = matrix.astype(np.float32)
    matrix.setflags(write=False)
    return matrix


def _gaussian_blur(x: np.ndarray, sigma: float, reflect: bool = False) -> np.ndarray:
    """Separable Gaussian blur of a batch, as two batched matrix products."""
    matrix = _blur_matrix(float(sigma), reflect)
    return matrix @ x @ matrix.T


def _affine_warp(x: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Bilinear warp of each image; maps[i] (2, 3) sends an output (row, col, 1) to its source.

    Pixels whose source falls outside the image are black, like skimage's `warp` in MNIST-C.
    """
    n = len(x)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    grid = np.stack([rows.ravel(), cols.ravel(), np.ones(SIZE * SIZE, np.float32)])  # (3, 784)
    out = np.empty((n, SIZE, SIZE), dtype=np.float32)
    padded_size = SIZE + 2
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        padded = np.pad(x[start:stop], ((0, 0), (1, 1), (1, 1))).reshape(-1)  # zero border
        src = maps[start:stop].astype(np.float32) @ grid  # (m, 2, 784)
        r, c = src[:, 0], src[:, 1]
        r0, c0 = np.floor(r), np.floor(c)
        fr, fc = r - r0, c - c0
        base = (np.arange(stop - start) * padded_size * padded_size)[:, None]
        # Clip each corner to the zero border separately: far-outside sources read zeros.
        ri = [np.clip(r0 + d, -1, SIZE).astype(np.int64) + 1 for d in (0, 1)]
        ci = [np.clip(c0 + d, -1, SIZE).astype(np.int64) + 1 for d in (0, 1)]

        def tap(a: int, b: int) -> np.ndarray:
            return padded[base + ri[a] * padded_size + ci[b]]

        value = (tap(0, 0) * (1 - fc) + tap(0, 1) * fc) * (1 - fr) + (
            tap(1, 0) * (1 - fc) + tap(1, 1) * fc
        ) * fr
        out[start:stop] = value.reshape(-1, SIZE, SIZE)
    return out


def _about_centre(linear: np.ndarray) -> np.ndarray:
    """(N, 2, 2) linear maps (output offset -> source offset) to (N, 2, 3) maps about 13.5."""
    centre = np.full(2, _CENTRE, dtype=np.float64)
    translation = centre - linear @ centre
    return np.concatenate([linear, translation[:, :, None]], axis=2)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _line_coords(n: int, rng: np.random.Generator, lines: int):
    """Random full-width lines: for every pixel, its (along, across) offsets to each line.

    Each line passes through a point in the central part of the image at a random angle.
    Returns two arrays of shape (n, lines, 28, 28).
    """
    points = rng.uniform(4.0, SIZE - 5.0, size=(n, lines, 2))
    angles = rng.uniform(0.0, np.pi, size=(n, lines))
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    dr = rows - points[..., 0, None, None].astype(np.float32)
    dc = cols - points[..., 1, None, None].astype(np.float32)
    cos = np.cos(angles).astype(np.float32)[..., None, None]
    sin = np.sin(angles).astype(np.float32)[..., None, None]
    along = dc * cos + dr * sin
    across = -dc * sin + dr * cos
    return along, across


def _stroke(distance: np.ndarray, width: float) -> np.ndarray:
    """Anti-aliased stroke profile: 1 within width/2 - 0.5 of the centre line, 0 beyond +0.5."""
    return np.clip(width / 2.0 + 0.5 - distance, 0.0, 1.0)


def _plasma(n: int, rng: np.random.Generator, size: int, decay: float) -> np.ndarray:
    """Batch of diamond-square ("plasma") fractals on a wrapping size x size grid, in [0, 1].

    The random displacement shrinks by decay**2 per octave, as in ImageNet-C / MNIST-C.
    """
    heights = np.zeros((n, size, size), dtype=np.float64)
    step, amplitude = size, 1.0
    while step >= 2:
        half = step // 2
        corners = heights[:, ::step, ::step]
        # Square step: each square's centre is the mean of its 4 corners plus noise.
        total = corners + np.roll(corners, -1, axis=1)
        total = total + np.roll(total, -1, axis=2)
        heights[:, half::step, half::step] = total / 4 + amplitude * rng.uniform(-1, 1, total.shape)
        centres = heights[:, half::step, half::step]
        # Diamond step: each edge midpoint is the mean of its 2 corners and 2 centres plus noise.
        horizontal = corners + np.roll(corners, -1, axis=2) + centres + np.roll(centres, 1, axis=1)
        heights[:, ::step, half::step] = horizontal / 4 + amplitude * rng.uniform(-1, 1, total.shape)
        vertical = corners + np.roll(corners, -1, axis=1) + centres + np.roll(centres, 1, axis=2)
        heights[:, half::step, ::step] = vertical / 4 + amplitude * rng.uniform(-1, 1, total.shape)
        step = half
        amplitude /= decay**2
    low = heights.min(axis=(1, 2), keepdims=True)
    high = heights.max(axis=(1, 2), keepdims=True)
    return ((heights - low) / np.maximum(high - low, 1e-12)).astype(np.float32)


# ----------------------------------------------------------------------------- noise


def shot_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Photon (Poisson) noise of a sensor collecting fewer and fewer photons."""
    # MNIST-C / ImageNet-C use 60, 25, 12, 5, 3; 60 is already grainy on a 28x28 garment.
    photons = _param((200, 80, 30, 10, 3), severity)
    return rng.poisson(x * photons) / float(photons)


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise: dead (black) and saturated (white) pixels."""
    amount = _param((0.03, 0.06, 0.09, 0.17, 0.27), severity)  # MNIST-C / ImageNet-C
    hit = rng.random(x.shape, dtype=np.float32) < amount
    salt = rng.random(x.shape, dtype=np.float32) < 0.5
    return np.where(hit, salt.astype(np.float32), x)


# ----------------------------------------------------------------------------- blur


def gaussian_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus lens: Gaussian blur of rising sigma (pixels)."""
    sigma = _param((0.5, 0.75, 1.0, 1.5, 2.0), severity)
    return _gaussian_blur(x, sigma)


def motion_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Camera or object moving during exposure: a line kernel of rising length, random angle."""
    length = _param((3.0, 5.0, 7.0, 9.0, 11.0), severity)
    n = len(x)
    k = int(length) + 2 + (int(length) + 1) % 2  # odd kernel side, room for the anti-aliasing
    half = k // 2
    angles = rng.uniform(0.0, np.pi, size=n)
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    dr, dc = np.meshgrid(offsets, offsets, indexing="ij")
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    along = np.abs(dc * cos + dr * sin)
    across = np.abs(-dc * sin + dr * cos)
    kernels = np.clip(1.0 - across, 0.0, 1.0) * np.clip(length / 2.0 + 0.5 - along, 0.0, 1.0)
    kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    full = SIZE + k - 1  # linear (zero-padded) convolution through the FFT
    out = np.empty_like(x)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        spectrum = np.fft.rfft2(x[start:stop], s=(full, full)) * np.fft.rfft2(
            kernels[start:stop], s=(full, full)
        )
        out[start:stop] = np.fft.irfft2(spectrum, s=(full, full))[:, half : half + SIZE, half : half + SIZE]
    return out


# ----------------------------------------------------------------------------- geometry


def shear(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Slanted view: horizontal shear about the centre, random direction per image."""
    # Column shift per row. MNIST-C uses skimage shear angles 0.2-1.0 rad, whose sin reaches
    # 0.84 and which also stretch the image vertically by 1/cos (1.85x at 1 rad).
    factor = _param((0.15, 0.3, 0.45, 0.6, 0.75), severity)
    n = len(x)
    linear = np.zeros((n, 2, 2))
    linear[:, 0, 0] = 1.0
    linear[:, 1, 1] = 1.0
    linear[:, 1, 0] = factor * _random_signs(rng, n)
    return _affine_warp(x, _about_centre(linear))


def scale(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Garment too small or too large in the frame: zoom out or in about the centre."""
    shrink = _param((0.9, 0.8, 0.7, 0.6, 0.5), severity)  # MNIST-C's factors
    enlarge = _param((1.1, 1.2, 1.3, 1.4, 1.5), severity)
    n = len(x)
    factors = np.where(rng.random(n) < 0.5, shrink, enlarge)
    linear = np.zeros((n, 2, 2))
    linear[:, 0, 0] = linear[:, 1, 1] = 1.0 / factors
    return _affine_warp(x, _about_centre(linear))


def rotate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Tilted garment or camera: rotation about the centre, random direction per image."""
    radians = _param((0.2, 0.4, 0.6, 0.8, 1.0), severity)  # MNIST-C: about 11 to 57 degrees
    n = len(x)
    theta = radians * _random_signs(rng, n)
    cos, sin = np.cos(theta), np.sin(theta)
    linear = np.stack([np.stack([cos, -sin], axis=1), np.stack([sin, cos], axis=1)], axis=1)
    return _affine_warp(x, _about_centre(linear))


def translate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Off-centre framing: shift by the same number of pixels down/up and left/right."""
    shift = _param((1, 2, 3, 4, 5), severity)  # MNIST-C
    n = len(x)
    signs = rng.integers(0, 2, size=(n, 2)) * 2 - 1
    out = np.zeros_like(x)
    for sr in (-1, 1):
        for sc in (-1, 1):
            chosen = (signs[:, 0] == sr) & (signs[:, 1] == sc)
            if not chosen.any():
                continue
            dr, dc = sr * shift, sc * shift
            dst_r = slice(max(dr, 0), SIZE + min(dr, 0))
            src_r = slice(max(-dr, 0), SIZE + min(-dr, 0))
            dst_c = slice(max(dc, 0), SIZE + min(dc, 0))
            src_c = slice(max(-dc, 0), SIZE + min(-dc, 0))
            block = np.zeros((int(chosen.sum()), SIZE, SIZE), dtype=x.dtype)
            block[:, dst_r, dst_c] = x[chosen][:, src_r, src_c]
            out[chosen] = block
    return out


# ----------------------------------------------------------------------------- photometric


def brightness(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Over-exposure: a constant added to every pixel (HSV value shift of MNIST-C on grey)."""
    return x + _param((0.1, 0.2, 0.3, 0.4, 0.5), severity)  # MNIST-C / ImageNet-C


def contrast(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Low contrast (haze, poor lighting): pixels pulled towards the image's mean."""
    keep = _param((0.75, 0.5, 0.4, 0.3, 0.15), severity)  # CIFAR-10-C (ImageNet-C's start at 0.4)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return (x - mean) * keep + mean


def inverse(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Photographic negative (dark garment on light ground), blended in; full inversion at 5."""
    # A 50 % blend would be flat grey, so the blend jumps past it between severities 3 and 4.
    alpha = _param((0.1, 0.2, 0.3, 0.7, 1.0), severity)
    return (1.0 - alpha) * x + alpha * (1.0 - x)


def stripe(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A band of the image inverted (sensor/scan-line defect), vertical or horizontal."""
    width = _param((3, 5, 7, 9, 11), severity)  # MNIST-C inverts 2 x 7 columns
    n = len(x)
    starts = rng.integers(0, SIZE - width + 1, size=n)
    vertical = rng.random(n) < 0.5
    index = np.arange(SIZE)
    in_band = (index[None, :] >= starts[:, None]) & (index[None, :] < starts[:, None] + width)
    mask = np.where(vertical[:, None, None], in_band[:, None, :], in_band[:, :, None])
    return np.where(mask, 1.0 - x, x)


# ----------------------------------------------------------------------------- weather, occlusion


def fog(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Fog or haze: low-frequency plasma-fractal brightness over a dimmed image."""
    # (fog strength, roughness decay): CIFAR-10-C's values; ImageNet-C's start at 1.5.
    strength, decay = _param(((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)), severity)
    haze = _plasma(len(x), rng, size=32, decay=decay)[:, :SIZE, :SIZE]
    return (x + strength * haze) / (1.0 + strength)


def spatter(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Mud spattered on the lens: grey drops that cover the garment and the background."""
    # As in MNIST-C, drops are where Gaussian-blurred noise exceeds a threshold, painted in
    # mud grey 63/255. MNIST-C's thresholds do not grow monotonically in coverage, so here the
    # noise is standardised per image and the threshold (in standard deviations) falls with
    # severity: about 4, 8, 13, 18 and 25 % of the image is covered. Smaller blur = smaller drops.
    sigma, threshold = _param(((2.0, 1.75), (2.0, 1.4), (1.5, 1.1), (1.5, 0.9), (1.25, 0.65)), severity)
    liquid = _gaussian_blur(rng.standard_normal(size=x.shape, dtype=np.float32), sigma, reflect=True)
    liquid -= liquid.mean(axis=(1, 2), keepdims=True)
    liquid /= np.maximum(liquid.std(axis=(1, 2), keepdims=True), 1e-6)
    mud = np.clip((liquid - threshold) / 0.25, 0.0, 1.0)  # drops with a soft, one-pixel rim
    return x * (1.0 - mud) + (63.0 / 255.0) * mud


def dotted_line(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Dashed white lines drawn across the image (MNIST-C dotted_line), more and thicker."""
    lines, width = _param(((1, 1.0), (1, 1.5), (2, 1.5), (2, 2.0), (3, 2.0)), severity)
    n = len(x)
    out = np.empty_like(x)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        along, across = _line_coords(stop - start, rng, lines)
        phase = rng.uniform(0.0, 4.0, size=(stop - start, lines, 1, 1)).astype(np.float32)
        dashes = ((along + phase) % 4.0) < 2.0  # 2 pixels on, 2 off, as in MNIST-C
        ink = (_stroke(np.abs(across), width) * dashes).max(axis=1)
        out[start:stop] = x[start:stop] + ink
    return out


def zigzag(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Zigzag white lines drawn across the image (MNIST-C zigzag), more and thicker."""
    lines, width = _param(((1, 1.0), (1, 1.5), (2, 1.0), (2, 1.5), (3, 1.5)), severity)
    # MNIST-C's legs run 2 and rise 2 pixels; longer legs keep the zigzag open at 28x28.
    run, rise = 3.0, 2.5
    n = len(x)
    out = np.empty_like(x)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        along, across = _line_coords(stop - start, rng, lines)
        phase = rng.uniform(0.0, 2 * run, size=(stop - start, lines, 1, 1)).astype(np.float32)
        t = ((along + phase) % (2 * run)) / run  # triangle wave between -rise and +rise
        centre = rise * (2.0 * np.abs(t - 1.0) - 1.0)
        # Across-distance to a 45-degree leg, converted to the perpendicular distance.
        distance = np.abs(across - centre) * (run / np.hypot(run, 2 * rise))
        ink = _stroke(distance, width).max(axis=1)
        out[start:stop] = x[start:stop] + ink
    return out


# ----------------------------------------------------------------------------- digital


def jpeg(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Lossy JPEG compression (blocking, ringing) at falling quality, through Pillow."""
    quality = _param((50, 30, 20, 12, 7), severity)  # ImageNet-C / MNIST-C reach 7
    out = np.empty_like(x)
    for i, image in enumerate(_to_uint8(x)):
        buffer = io.BytesIO()
        Image.fromarray(image, "L").save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[i] = np.asarray(decoded, dtype=np.float32) / 255.0
    return out


def pixelate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Low-resolution capture: box-downsampled, then blown back up to 28x28 in square blocks."""
    # Side in pixels; MNIST-C's 16, 14, 11, 8, 7 (box up) are not monotone in damage at 28x28.
    side = _param((18, 14, 11, 9, 7), severity)
    out = np.empty_like(x)
    for i, image in enumerate(_to_uint8(x)):
        small = Image.fromarray(image, "L").resize((side, side), Image.Resampling.BOX)
        big = small.resize((SIZE, SIZE), Image.Resampling.NEAREST)
        out[i] = np.asarray(big, dtype=np.float32) / 255.0
    return out


# ----------------------------------------------------------------------------- registry, entry point

CORRUPTIONS: dict[str, Corruption] = {
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "shear": shear,
    "scale": scale,
    "rotate": rotate,
    "translate": translate,
    "brightness": brightness,
    "contrast": contrast,
    "inverse": inverse,
    "stripe": stripe,
    "fog": fog,
    "spatter": spatter,
    "dotted_line": dotted_line,
    "zigzag": zigzag,
    "jpeg": jpeg,
    "pixelate": pixelate,
}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Apply corruption `name` at `severity` (1-5) to uint8 images (N, 28, 28) or (28, 28).

    Returns a new uint8 array of the same shape; the input is never modified. The result is
    a deterministic function of (images, name, severity, seed).
    """
    if not isinstance(name, str) or name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid names: {', '.join(CORRUPTIONS)}")
    if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, (int, np.integer)) or not (
        SEVERITIES[0] <= severity <= SEVERITIES[-1]
    ):
        raise ValueError(f"severity must be an integer from 1 to 5, got {severity!r}")
    if not isinstance(images, np.ndarray):
        raise ValueError(f"images must be a NumPy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0-255), got dtype {images.dtype}")
    single = images.ndim == 2
    if images.shape[-2:] != (SIZE, SIZE) or images.ndim not in (2, 3):
        raise ValueError(f"images must have shape (N, 28, 28) or (28, 28), got {images.shape}")
    batch = images[None] if single else images
    if len(batch) == 0:
        return images.copy()
    # One random stream per (seed, corruption, severity), so corruptions do not share draws.
    rng = np.random.default_rng([int(seed), zlib.crc32(name.encode()), int(severity)])
    x = batch.astype(np.float32) / 255.0
    result = np.asarray(CORRUPTIONS[name](x, int(severity), rng), dtype=np.float32)
    if result.shape != x.shape:
        raise AssertionError(f"{name} returned shape {result.shape}, expected {x.shape}")
    out = _to_uint8(result)
    return out[0] if single else out
