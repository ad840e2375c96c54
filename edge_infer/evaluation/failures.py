"""Why a photo was classified wrong: sort the wrong answers on a labelled folder into kinds.

Each kind is a measurable symptom of the preprocessing or the model, not a guess:
- `frame_filled`: the object's box covers most of the frame (the garment fills it, or the
  trim found no background), so the model sees the whole photo;
- `background_left`: the 28x28 still has light pixels in its corners, which are black in
  Fashion-MNIST (a garment may touch the edges, never the corners): a textured floor or a
  failed cut survived;
- `low_contrast`: the garment's grey level is close to the background's (light on light,
  dark on dark), so its outline is weak;
- `footwear`: the truth is a shoe class (pairs, top views);
- `said_bag`: the answer is Bag although the truth is not (where the model puts what it does
  not recognise);
- `near_miss`: the truth is the second guess;
- `segmented`: the photo went through garment segmentation (a varied border), and nothing
  above applies: the cut looked clean, the model still got it wrong.
A wrong answer can have several kinds; `primary` is the first that applies in the order above.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from ..classes import CLASS_NAMES, FOOTWEAR
from ..preprocess import find_object, flatten_on_white, normalise_mode, to_uint8_image

KINDS = ("frame_filled", "background_left", "low_contrast", "footwear", "said_bag", "near_miss", "segmented")
# share of the frame's area inside the object's box; a segmented garment's box stops at the
# segmenter's border ring (4 % a side, rounded to pixels: about 0.84-0.86 of the frame at most)
_FRAME_FILLED = 0.8
_CORNER_LEVEL = 0.15  # mean of the 28x28's four 3x3 corners above this: background left in
_LOW_CONTRAST = 40.0  # grey levels between garment and background
_BAG = 8


@dataclass
class Failure:
    path: str
    truth: int
    answer: int
    kinds: list[str] = field(default_factory=list)

    @property
    def primary(self) -> str:
        return self.kinds[0] if self.kinds else "other"


def failure_kinds(image: Image.Image, preprocessed: np.ndarray, truth: int, probabilities: np.ndarray) -> list[str]:
    """The kinds (in KINDS order) that describe one wrong answer."""
    image = normalise_mode(image)
    box, background, mask = find_object(image)
    left, top, right, bottom = box
    area = (right - left) * (bottom - top) / max(1, image.width * image.height)
    corners = np.concatenate([preprocessed[:3, :3].ravel(), preprocessed[:3, -3:].ravel(),
                              preprocessed[-3:, :3].ravel(), preprocessed[-3:, -3:].ravel()])
    grey = np.asarray(flatten_on_white(image.crop(box)).convert("L").resize((32, 32)), dtype=np.float32)
    if mask is None:  # the object is what differs from the border's grey level
        inside = grey[np.abs(grey - background) > 10]
    else:  # segmented: compare the garment with what was cut away, not with the white it was painted on
        garment = np.asarray(mask.resize((32, 32))) > 127
        inside, outside = grey[garment], grey[~garment]
        background = float(np.median(outside)) if outside.size else background
    garment_level = float(np.median(inside)) if inside.size else background
    order = np.argsort(-probabilities)
    found = {
        "frame_filled": area >= _FRAME_FILLED,
        "background_left": float(corners.mean()) > _CORNER_LEVEL,
        "low_contrast": abs(garment_level - background) < _LOW_CONTRAST,
        "segmented": mask is not None,
        "footwear": truth in FOOTWEAR,
        "said_bag": int(order[0]) == _BAG and truth != _BAG,
        "near_miss": len(order) > 1 and int(order[1]) == truth,
    }
    return [kind for kind in KINDS if found[kind]]


def summarise(failures: list[Failure], images: int) -> dict:
    """Counts per kind (any and primary) and per (truth, answer) pair."""
    any_kind = {kind: sum(kind in f.kinds for f in failures) for kind in KINDS}
    primary = {kind: sum(f.primary == kind for f in failures) for kind in (*KINDS, "other")}
    pairs: dict[str, int] = {}
    for f in failures:
        key = f"{CLASS_NAMES[f.truth]} -> {CLASS_NAMES[f.answer]}"
        pairs[key] = pairs.get(key, 0) + 1
    return {"images": images, "wrong": len(failures), "any_kind": any_kind, "primary": primary,
            "confusions": dict(sorted(pairs.items(), key=lambda item: -item[1]))}


def contact_sheet(rows: list[tuple[Image.Image, np.ndarray, Failure]], columns: int = 6, cell: int = 112) -> Image.Image:
    """Photo, what the model saw, and a caption (truth -> answer, kinds) per wrong answer."""
    caption = 30
    width = columns * cell * 2
    height = max(1, (len(rows) + columns - 1) // columns) * (cell + caption)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (photo, seen, failure) in enumerate(rows):
        x = (i % columns) * cell * 2
        y = (i // columns) * (cell + caption)
        thumb = normalise_mode(photo).convert("RGB")
        thumb.thumbnail((cell, cell))
        sheet.paste(thumb, (x, y))
        model_view = to_uint8_image(seen)
        sheet.paste(model_view.resize((cell, cell), Image.Resampling.NEAREST).convert("RGB"), (x + cell, y))
        text = f"{CLASS_NAMES[failure.truth]} -> {CLASS_NAMES[failure.answer]}\n{', '.join(failure.kinds) or 'other'}"
        draw.multiline_text((x + 2, y + cell + 1), text, fill=(160, 0, 0), spacing=1)
    return sheet
