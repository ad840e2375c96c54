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
    """One uint8 28x28 image (bright object on black; any shape, e.g. a `footwear_pair`) to an RGB
    photo-like PIL image."""
    width = int(rng.integers(64, 360))
    height = int(width * rng.uniform(0.75, 1.35))
    object_side = int(min(width, height) * rng.uniform(0.45, 0.95))
    angle = float(rng.uniform(-12, 12))
    alpha = _scaled(image28, object_side)
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
    return _through_camera(photo, rng, noise=(0.0, 6.0), blur=1.2, min_quality=40)


def _scaled(image: np.ndarray, side: int) -> Image.Image:
    """A uint8 silhouette as a PIL image whose longer side is `side` (a 28x28 one: side x side)."""
    alpha = Image.fromarray(np.asarray(image, dtype=np.uint8), "L")
    scale = side / max(alpha.size)
    size = (max(1, round(alpha.width * scale)), max(1, round(alpha.height * scale)))
    return alpha.resize(size, Image.Resampling.BICUBIC)


PAIR_VIEWS = ("above", "side")


def footwear_pair(image28: np.ndarray, rng: np.random.Generator, view: str | None = None) -> np.ndarray:
    """One Fashion-MNIST shoe (a single shoe, side view) as a pair, the way sellers photograph shoes.

    Six times in ten from above: two shoes side by side, turned upright (the side view's outline
    stands in for the sole's, which Fashion-MNIST does not have), the second mirrored like a right
    foot. Otherwise from the side: the second shoe behind the first and a little above it. `view`
    forces one of PAIR_VIEWS. Returns a uint8 silhouette (bright on black) cropped to the pair.
    """
    shoe = Image.fromarray(np.asarray(image28, dtype=np.uint8), "L").resize((56, 56), Image.Resampling.BICUBIC)
    if view is None:
        view = PAIR_VIEWS[int(rng.random() >= 0.6)]
    if view == "above":
        turn = float(rng.uniform(75, 105) * rng.choice([-1, 1]))
        first = _cropped(shoe.rotate(turn + float(rng.uniform(-8, 8)), Image.Resampling.BICUBIC, expand=True))
        second = _cropped(shoe.rotate(turn + float(rng.uniform(-8, 8)), Image.Resampling.BICUBIC, expand=True)
                          .transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        dx = first.width + int(rng.uniform(-0.1, 0.25) * first.width)
        dy = int(rng.uniform(-0.15, 0.15) * first.height)
    else:
        first = second = _cropped(shoe)
        dx = int(rng.uniform(-0.2, 0.2) * first.width)
        dy = -int(rng.uniform(0.25, 0.6) * first.height)
    return _overlaid(np.asarray(first), np.asarray(second), dx, dy)


def _cropped(alpha: Image.Image) -> Image.Image:
    box = alpha.getbbox()
    return alpha.crop(box) if box else alpha


def _overlaid(first: np.ndarray, second: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Two silhouettes on one canvas, `second` offset by (dx, dy) from `first` and behind it:
    wherever `first` has ink, it hides `second`."""
    left, top = min(0, dx), min(0, dy)
    width = max(first.shape[1], dx + second.shape[1]) - left
    height = max(first.shape[0], dy + second.shape[0]) - top
    canvas = np.zeros((height, width), dtype=np.uint8)
    canvas[dy - top:dy - top + second.shape[0], dx - left:dx - left + second.shape[1]] = second
    front = canvas[-top:-top + first.shape[0], -left:-left + first.shape[1]]
    np.copyto(front, first, where=first > 0)
    return canvas


def _through_camera(photo: np.ndarray, rng: np.random.Generator, noise: tuple[float, float], blur: float,
                    min_quality: int) -> Image.Image:
    """Sensor noise (its sigma drawn from `noise`), sometimes a little defocus, then JPEG."""
    photo = photo + rng.normal(0, rng.uniform(*noise), size=photo.shape)
    result = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.3:
        result = result.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, blur))))
    buffer = io.BytesIO()
    result.save(buffer, "JPEG", quality=int(rng.integers(min_quality, 95)))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _background(width: int, height: int, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A flat colour with a gentle lighting gradient, as on a studio sweep or a wall."""
    gradient = np.linspace(-1, 1, height, dtype=np.float32)[:, None] * rng.uniform(-12, 12)
    gradient = gradient + np.linspace(-1, 1, width, dtype=np.float32)[None, :] * rng.uniform(-12, 12)
    return np.clip(colour[None, None, :] + gradient[..., None], 0, 255).astype(np.float32)


def render_floor_photo(image28: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A harder, phone-photo rendering: the garment laid on a textured floor or fabric, in a
    colour that may be close to the floor's, sometimes striped, with a soft shadow, and
    sometimes running off the edge of the frame. Used only in training."""
    width = int(rng.integers(96, 320))
    height = int(width * rng.uniform(0.75, 1.35))
    object_side = int(min(width, height) * rng.uniform(0.6, 1.15))
    alpha = _scaled(image28, object_side)
    alpha = alpha.rotate(float(rng.uniform(-20, 20)), resample=Image.Resampling.BICUBIC, expand=True)
    offset = (int(rng.integers(min(0, width - alpha.width), max(1, width - alpha.width + 1))),
              int(rng.integers(min(0, height - alpha.height), max(1, height - alpha.height + 1))))
    # floors and walls are mostly neutral (grey, beige, wood); garments any colour, usually darker
    floor_colour = rng.uniform(90, 235) + rng.uniform(-18, 18, size=3)
    canvas = _texture(width, height, floor_colour, rng)
    floor_level = float(floor_colour.mean())
    if rng.random() < 0.3 and floor_level < 200:
        level = rng.uniform(floor_level + 40, 255)
    else:
        level = rng.uniform(0, max(10.0, floor_level - 50))
    garment = np.clip(level + rng.uniform(-60, 60, size=3), 0, 255)
    mask = Image.new("L", (width, height), 0)
    mask.paste(alpha, offset)
    mask_arr = np.asarray(mask, dtype=np.float32) / 255.0
    shadow = np.asarray(mask.filter(ImageFilter.GaussianBlur(max(2, width // 40))), dtype=np.float32) / 255.0
    shadow = np.roll(shadow, (int(rng.integers(0, 6)), int(rng.integers(0, 6))), axis=(0, 1))
    canvas *= (1.0 - 0.35 * rng.random() * shadow)[..., None]
    colour = np.broadcast_to(garment, (height, width, 3)).astype(np.float32)
    if rng.random() < 0.25:  # stripes or a print in a second colour
        period = int(rng.integers(4, 16))
        stripes = (np.arange(height)[:, None] // period % 2).astype(np.float32)
        second = rng.uniform(0, 255, size=3)
        colour = colour * (1 - stripes[..., None]) + second * stripes[..., None]
    # shading: darker folds where the Fashion-MNIST image is darker inside the silhouette
    shade = 0.6 + 0.4 * mask_arr
    photo = canvas * (1.0 - mask_arr[..., None]) + colour * shade[..., None] * (mask_arr[..., None] > 0.05)
    return _through_camera(photo, rng, noise=(1.0, 8.0), blur=1.0, min_quality=50)


def _texture(width: int, height: int, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Floorboards, tiles, carpet-like noise or a plain wall, around `colour`."""
    kind = int(rng.integers(0, 4))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:  # floorboards: bands with a grain
        board = int(rng.integers(12, 60))
        pattern = (y // board % 2) * rng.uniform(5, 25) + np.sin(x / rng.uniform(3, 12) + y) * rng.uniform(2, 10)
    elif kind == 1:  # tiles: a grid of grout lines
        tile = int(rng.integers(20, 90))
        pattern = ((x % tile < 2) | (y % tile < 2)).astype(np.float32) * -rng.uniform(20, 60)
    elif kind == 2:  # carpet or fabric: blurred noise
        noise = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), "L")
        noise = noise.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3))))
        pattern = (np.asarray(noise, dtype=np.float32) - 128) * rng.uniform(0.3, 1.2)
    else:  # a plain wall with a lighting gradient
        pattern = (y / height - 0.5) * rng.uniform(-30, 30)
    return np.clip(colour[None, None, :] + pattern[..., None], 0, 255).astype(np.float32)
