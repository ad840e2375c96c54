"""Golden outputs of the robust preprocessing, keyed to PREPROCESS_VERSION.

The shipped models learnt the exact look of this preprocessing, so its output must not change
without a new version (and retrained models). The inputs: every image in unseen/ and
unseen/shifted/, and the generated scenes in tests/scenes.py. After an intended change, bump
PREPROCESS_VERSION in edge_infer/preprocess.py and record the new outputs:

    python -m tests.golden_outputs
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from edge_infer.preprocess import PREPROCESS_VERSION, robust, to_uint8_image

from .scenes import SCENES

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def golden_path(version: str = PREPROCESS_VERSION) -> Path:
    return GOLDEN_DIR / f"preprocess-{version}.npz"


def golden_inputs():
    """(name, image) pairs, in a fixed order."""
    for folder in (ROOT / "unseen", ROOT / "unseen" / "shifted"):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in (".png", ".jpg"):
                with Image.open(path) as image:
                    image.load()
                    yield str(path.relative_to(ROOT)), image
    for name, make in SCENES.items():
        yield f"scene:{name}", make()


def outputs() -> tuple[list[str], np.ndarray]:
    names, arrays = [], []
    for name, image in golden_inputs():
        names.append(name)
        arrays.append(np.asarray(to_uint8_image(robust(image))))
    return names, np.stack(arrays)


def record() -> Path:
    names, arrays = outputs()
    target = golden_path()
    np.savez_compressed(target, names=np.array(names), arrays=arrays)
    return target


if __name__ == "__main__":
    print(f"recorded {record()}", file=sys.stderr)
