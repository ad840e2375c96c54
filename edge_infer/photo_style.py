"""Re-present a 28x28 Fashion-MNIST image the way a listing photo looks.

A Fashion-MNIST pixel is the negated grey level of a product photographed on white, so the
garment is rendered back as a coloured object on a light (sometimes dark), slightly textured
background, at an arbitrary size and position, a little rotated, noisy and JPEG-compressed.
Used to build `unseen/shifted/` and, in training, to show the model what preprocessing leaves
of such a photo. NumPy and Pillow only; deterministic given the generator.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def render_listing_photo(image28: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One uint8 28x28 image (bright object on black) to an RGB photo-like PIL image."""
    alpha28 = Image.fromarray(np.asarray(image28, dtype=np.uint8), "L")
    width = int(rng.integers(64, 360))
    height = int(width * rng.uniform(0.75, 1.35))
    object_side = int(min(width, height) * rng.uniform(0.45, 0.95))
    angle = float(rng.uniform(-12, 12))
    alpha = alpha28.resize((object_side, object_side), Image.Resampling.BICUBIC)
    alpha = alpha.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    slack_x = max(0, width - alpha.width)
    slack_y = max(0, height - alpha.height)
    offset = (int(rng.integers(0, slack_x + 1)), int(rng.integers(0, slack_y + 1)))

    dark_background = rng.random() < 0.15
    if dark_background:
        background = rng.uniform(0, 60, size=3)
        garment = rng.uniform(150, 255, size=3)
    else:
        background = rng.uniform(190, 255, size=3) * rng.uniform(0.92, 1.0)
        garment = rng.uniform(0, 150, size=3)
    canvas = _background(width, height, background, rng)
    mask = np.zeros((height, width), dtype=np.float32)
    patch = np.asarray(alpha, dtype=np.float32)[: height - offset[1], : width - offset[0]] / 255.0
    mask[offset[1] : offset[1] + patch.shape[0], offset[0] : offset[0] + patch.shape[1]] = patch
    photo = canvas * (1.0 - mask[..., None]) + garment * mask[..., None]
    photo += rng.normal(0, rng.uniform(0, 6), size=photo.shape)
    result = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.3:
        result = result.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    buffer = io.BytesIO()
    result.save(buffer, "JPEG", quality=int(rng.integers(40, 95)))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _background(width: int, height: int, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A flat colour with a gentle lighting gradient, as on a studio sweep or a wall."""
    gradient = np.linspace(-1, 1, height, dtype=np.float32)[:, None] * rng.uniform(-12, 12)
    gradient = gradient + np.linspace(-1, 1, width, dtype=np.float32)[None, :] * rng.uniform(-12, 12)
    return np.clip(colour[None, None, :] + gradient[..., None], 0, 255).astype(np.float32)
