"""Turn any decoded picture into a 28x28 Fashion-MNIST-style array in [0, 1].

`robust` undoes how a listing photo is presented, following the steps that made
Fashion-MNIST from product photos (Xiao, Rasul and Vollgraf 2017, section 2): trim to the
object, resize the longest edge to 28, sharpen, centre on 28x28, negate, 8-bit grey.
`plain` is the study's way (grey, invert, squash the whole frame) kept for comparison.
Both are pure functions of a PIL image.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from .classes import IMAGE_SIZE
from .segment import SEGMENT_SIZE, garment_mask

# Bumped whenever the output of `robust` changes; exported models record the version they expect.
# robust-3: ties in the segmenter's start broken by pixel order; opaque alpha ignored; a grey
# 28x28 RGB picture counts as Fashion-MNIST form (so that the ONNX graph, fed RGBA, can match)
# robust-4: the segmenter's colour mixtures have full covariances, on a 96-pixel thumbnail
PREPROCESS_VERSION = "robust-4"
METHODS = ("robust", "plain")

_ANALYSIS_SIZE = 128  # the background and the object's box are found on a thumbnail this big
_BORDER_FRACTION = 0.04  # the outer ring (of the thumbnail) taken as background
_MIN_DISTANCE = 24.0  # colour distance (0-441) below which a pixel counts as background
_MASS_TRIM = 0.01  # ignore this fraction of foreground at each side (specks, shadows)
_BORDER_MARGIN = 1.5  # foreground must differ from the background by this times the border's own spread
# A border whose colours vary more than this (95th percentile of the distance to its median)
# is not a studio sweep but a floor, a bed or the garment itself: segment instead of trimming.
# Packshots and drawings measure 0-32 (realdev packshots 0, unseen/shifted at most ~32),
# phone photos 50-235 (realdev phone photos: 5th percentile 49.5).
_SEGMENT_SPREAD = 40.0
_SHARPEN_PERCENT = 60  # unsharp mask strength after resizing (Fashion-MNIST's conversion sharpened)
_SHARPEN_RADIUS, _SHARPEN_THRESHOLD = 1, 2
_SEGMENT_BLUR = 1  # Gaussian blur radius on the segmenter's thumbnail, against grain
_GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma: the background's grey level
_WHITE = (255, 255, 255)


def normalise_mode(image: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB, RGBA, L or LA (first frame, EXIF orientation applied).

    An alpha channel that is opaque everywhere is dropped: such a picture is a photo like
    any other (and one that arrives as RGBA, as in the ONNX graph, must look the same)."""
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    image = _basic_mode(ImageOps.exif_transpose(image))
    if image.mode in ("RGBA", "LA") and image.getchannel("A").getextrema()[0] == 255:
        return image.convert(image.mode[:-1])
    return image


def rgba_bytes(image: Image.Image) -> np.ndarray:
    """What the one-file model (`<name>.e2e.onnx`) takes: the picture as (H, W, 4) uint8 RGBA."""
    return np.asarray(normalise_mode(image).convert("RGBA"))


def _basic_mode(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if (mode.startswith("I;16") or arr.max(initial=0) > 255) else 255.0
        if mode == "F" and arr.max(initial=0) <= 1.0:
            top = 1.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if mode in ("RGBa", "La"):
        return image.convert("RGBA" if mode == "RGBa" else "LA")
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def flatten_on_white(image: Image.Image) -> Image.Image:
    """Composite transparency onto white, as on a product packshot; returns L or RGB."""
    if image.mode == "RGBA":
        canvas = Image.new("RGB", image.size, _WHITE)
        canvas.paste(image, mask=image.getchannel("A"))
        return canvas
    if image.mode == "LA":
        canvas = Image.new("L", image.size, 255)
        canvas.paste(image.getchannel("L"), mask=image.getchannel("A"))
        return canvas
    return image


def fashion_mnist_form(image: Image.Image) -> np.ndarray | None:
    """The pixels of a 28x28 grey image on a dark background (already what the model wants), else None.

    Judged by the four corner pixels: a garment may fill the whole border of a Fashion-MNIST
    image (border medians up to 160 in the training set), but never its corners (medians of
    the corners at most 35.5 in train, 51.5 in test), while a light background lights them all."""
    if image.size != (IMAGE_SIZE, IMAGE_SIZE) or image.mode not in ("L", "RGB"):
        return None
    arr = np.asarray(image)
    if image.mode == "RGB":  # grey saved as RGB counts too
        if not ((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()):
            return None
        arr = arr[..., 0]
    corners = (arr[0, 0], arr[0, -1], arr[-1, 0], arr[-1, -1])
    return arr if float(np.median(corners)) < 128 else None


def plain(image: Image.Image) -> np.ndarray:
    """The study's preprocessing: grey, squash the whole frame to 28x28, invert."""
    grey = flatten_on_white(normalise_mode(image)).convert("L")
    small = grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    return (255.0 - np.asarray(small, dtype=np.float32)) / 255.0


class ObjectRegion(NamedTuple):
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the image
    background: float  # grey level of the background
    mask: Image.Image | None  # garment mask ("L", 255 = garment) over `box`, when segmented


def find_object(image: Image.Image) -> ObjectRegion:
    """Where the object is in `image`, and what its background is.

    With transparency, the transparent pixels are the background (on white). On a plain
    border (packshots, drawings) the background colour is the border ring's median and the
    object is what differs from it. On a varied border (a phone photo: floor, bed, or the
    garment running off the frame) the garment is segmented (`edge_infer.segment`) and
    everything else is painted white. The box keeps the central 1 - 2 * _MASS_TRIM of the
    foreground mass in each direction, so stray specks or a textured floor do not stretch it.
    """
    thumb = image.copy()
    thumb.thumbnail((_ANALYSIS_SIZE, _ANALYSIS_SIZE), Image.Resampling.BOX)
    mask = None
    if thumb.mode in ("RGBA", "LA"):
        alpha = np.asarray(thumb.getchannel("A"), dtype=np.float32)
        foreground = alpha > 127
        background = 255.0
        if foreground.all() or not foreground.any():
            foreground, background, _ = _colour_foreground(flatten_on_white(thumb))
    else:
        foreground, background, spread = _colour_foreground(thumb)
        if spread > _SEGMENT_SPREAD:
            mask = _segment(thumb)
            if mask is not None:
                thumb, foreground, background = mask, np.asarray(mask) > 127, 255.0
    box = _mass_box(foreground)
    if mask is not None:
        mask = mask.crop(box)
    scale_x = image.width / thumb.width
    scale_y = image.height / thumb.height
    left, top, right, bottom = box
    box = (
        int(np.floor(left * scale_x)),
        int(np.floor(top * scale_y)),
        min(image.width, int(np.ceil(right * scale_x))),
        min(image.height, int(np.ceil(bottom * scale_y))),
    )
    return ObjectRegion(box, background, mask)


def _segment(thumb: Image.Image) -> Image.Image | None:
    """The garment mask of a photo thumbnail (smaller still, lightly blurred against grain)."""
    small = thumb.convert("RGB")
    small.thumbnail((SEGMENT_SIZE, SEGMENT_SIZE), Image.Resampling.BOX)
    small = small.filter(ImageFilter.GaussianBlur(_SEGMENT_BLUR))
    mask = garment_mask(np.asarray(small, dtype=np.float32))
    return None if mask is None else Image.fromarray(mask.astype(np.uint8) * 255, "L")


def _mass_box(foreground: np.ndarray) -> tuple[int, int, int, int]:
    left, right = _mass_span(foreground.sum(axis=0))
    top, bottom = _mass_span(foreground.sum(axis=1))
    return left, top, right, bottom


def _colour_foreground(thumb: Image.Image) -> tuple[np.ndarray, float, float]:
    """Pixels that differ from the border's colour, its grey level, and the border's spread."""
    rgb_image = thumb.convert("RGB")
    rgb = np.asarray(rgb_image, dtype=np.float32)
    height, width = rgb.shape[:2]
    ring = max(1, int(round(_BORDER_FRACTION * min(height, width))))
    border = np.concatenate(
        [
            rgb[:ring].reshape(-1, 3),
            rgb[-ring:].reshape(-1, 3),
            rgb[:, :ring].reshape(-1, 3),
            rgb[:, -ring:].reshape(-1, 3),
        ]
    )
    background = np.median(border, axis=0)
    # per colour plane: 5x faster than summing over a last axis of 3, the same bits
    distance = np.zeros((height, width), dtype=np.float32)
    for plane, level in zip(rgb_image.split(), background):
        distance += (np.asarray(plane, dtype=np.float32) - level) ** 2
    distance = np.sqrt(distance, out=distance)
    border_distance = np.concatenate(
        [distance[:ring].ravel(), distance[-ring:].ravel(), distance[:, :ring].ravel(), distance[:, -ring:].ravel()]
    )
    spread = float(np.percentile(border_distance, 95))
    # A textured background (floor, fabric) raises the bar to what its own border varies by.
    threshold = max(_MIN_DISTANCE, spread * _BORDER_MARGIN)
    grey = float(background @ np.array(_GREY_WEIGHTS))
    return distance > threshold, grey, spread


def _mass_span(profile: np.ndarray) -> tuple[int, int]:
    """Indices [start, stop) holding the central mass of a 1-D foreground profile."""
    total = float(profile.sum())
    if total == 0:
        return 0, len(profile)
    cumulative = np.cumsum(profile) / total
    start = int(np.searchsorted(cumulative, _MASS_TRIM, side="right"))
    stop = int(np.searchsorted(cumulative, 1.0 - _MASS_TRIM, side="left")) + 1
    return start, max(stop, start + 1)


def robust(image: Image.Image) -> np.ndarray:
    """Any photo to a 28x28 float32 array, bright object centred on black, in [0, 1]."""
    image = normalise_mode(image)
    ready = fashion_mnist_form(image)
    if ready is not None:
        return ready.astype(np.float32) / 255.0
    box, background, mask = find_object(image)
    light = background >= 128
    crop = flatten_on_white(image.crop(box))
    if mask is not None:  # segmented: everything but the garment becomes white, as on a packshot
        white = Image.new(crop.mode, crop.size, _WHITE if crop.mode == "RGB" else 255)
        white.paste(crop, mask=mask.resize(crop.size, Image.Resampling.BILINEAR))
        crop = white
    crop = crop.convert("L")
    width, height = crop.size
    scale = IMAGE_SIZE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = crop.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if light:
        small = ImageOps.invert(small)
    small = small.filter(ImageFilter.UnsharpMask(radius=_SHARPEN_RADIUS, percent=_SHARPEN_PERCENT,
                                                  threshold=_SHARPEN_THRESHOLD))
    arr = np.asarray(small, dtype=np.float32)
    arr = _black_background(arr, 255.0 - background if light else background)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    top = (IMAGE_SIZE - arr.shape[0]) // 2
    left = (IMAGE_SIZE - arr.shape[1]) // 2
    canvas[top : top + arr.shape[0], left : left + arr.shape[1]] = arr
    return canvas


def _black_background(arr: np.ndarray, floor: float) -> np.ndarray:
    """Shift the background level to 0 and stretch the object to 1, as Fashion-MNIST is."""
    peak = float(arr.max())
    if peak - floor < 1.0:
        return np.zeros_like(arr)
    return np.clip((arr - floor) / (peak - floor), 0.0, 1.0)


def preprocess(image: Image.Image, method: str = "robust") -> np.ndarray:
    if method == "robust":
        return robust(image)
    if method == "plain":
        return plain(image)
    raise ValueError(f"unknown preprocessing {method!r}; choose from {', '.join(METHODS)}")


def to_uint8_image(array: np.ndarray) -> Image.Image:
    """A model input (28x28 in [0, 1]) as a grey PNG-able image, for --save-preprocessed."""
    return Image.fromarray(np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
