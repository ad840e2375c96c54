"""Generated photo-like scenes for the preprocessing tests: deterministic, made on the fly."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def tshirt_mask(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    """A T-shirt silhouette (body and two sleeves) filling `box`, as an "L" mask."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    draw.rectangle((left + w * 0.25, top, left + w * 0.75, bottom), fill=255)  # body
    draw.polygon([(left + w * 0.25, top), (left, top + h * 0.35), (left + w * 0.12, top + h * 0.45),
                  (left + w * 0.25, top + h * 0.3)], fill=255)  # left sleeve
    draw.polygon([(left + w * 0.75, top), (right, top + h * 0.35), (right - w * 0.12, top + h * 0.45),
                  (left + w * 0.75, top + h * 0.3)], fill=255)  # right sleeve
    return mask


def floorboards(width: int, height: int, rng: np.random.Generator, colour=(170, 120, 80)) -> np.ndarray:
    """A wooden floor: bands of slightly different tone with a grain and sensor noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    board = (y // 23 % 3) * 12.0 + np.sin(x / 5.0 + y / 3.0) * 6.0
    floor = np.array(colour, dtype=np.float32)[None, None, :] + board[..., None]
    return np.clip(floor + rng.normal(0, 4, (height, width, 3)), 0, 255)


def garment_on_floor(width=300, height=400, box=(-20, 40, 320, 380), garment=(30, 50, 140), seed=0) -> Image.Image:
    """A phone photo: a garment on a wooden floor, running off both sides of the frame."""
    rng = np.random.default_rng(seed)
    floor = floorboards(width, height, rng)
    mask = np.asarray(tshirt_mask(width, height, box), dtype=np.float32)[..., None] / 255.0
    cloth = np.array(garment, dtype=np.float32) + rng.normal(0, 5, (height, width, 3))
    return Image.fromarray(np.clip(floor * (1 - mask) + cloth * mask, 0, 255).astype(np.uint8), "RGB")


def packshot(width=240, height=240, garment=(40, 40, 40), background=(255, 255, 255)) -> Image.Image:
    """A product photo: a garment on a plain studio background, well inside the frame."""
    image = Image.new("RGB", (width, height), background)
    image.paste(garment, (0, 0), tshirt_mask(width, height, (40, 30, 200, 210)))
    return image


def light_on_light(seed=1) -> Image.Image:
    """A white garment on a light, slightly textured bedspread."""
    return garment_on_floor(box=(30, 60, 270, 350), garment=(245, 245, 240), seed=seed).point(
        lambda v: min(255, v + 60))


SCENES = {
    "garment_on_floor": garment_on_floor,
    "garment_on_floor_inside": lambda: garment_on_floor(box=(40, 60, 260, 340), garment=(200, 30, 40), seed=2),
    "packshot_white": packshot,
    "packshot_dark": lambda: packshot(garment=(220, 220, 220), background=(15, 15, 15)),
    "light_on_light": light_on_light,
}
