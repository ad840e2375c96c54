"""A changed pixel in the robust preprocessing fails here unless PREPROCESS_VERSION changes too."""

import numpy as np
import pytest

from edge_infer.preprocess import PREPROCESS_VERSION

from .golden_outputs import golden_path, outputs

# Pillow or NumPy releases may round a resize differently by a grey level; anything larger
# (a 3% contrast change moves bright pixels by 7 levels, a shift by far more) is a real change.
MAX_LEVELS = 2
MEAN_LEVELS = 0.25


@pytest.fixture(scope="module")
def golden():
    path = golden_path()
    if not path.is_file():
        pytest.fail(f"no golden outputs for {PREPROCESS_VERSION!r}: run `python -m tests.golden_outputs` "
                    "after checking the new outputs are intended")
    with np.load(path) as data:
        return list(data["names"]), data["arrays"]


def test_robust_preprocessing_matches_its_golden_outputs(golden):
    names, expected = golden
    current_names, current = outputs()
    assert current_names == names, "the golden inputs changed: record them again"
    difference = np.abs(current.astype(np.int16) - expected.astype(np.int16))
    changed = [name for name, diff in zip(names, difference) if diff.max() > MAX_LEVELS or diff.mean() > MEAN_LEVELS]
    assert not changed, (f"robust preprocessing output changed for {len(changed)} images (e.g. {changed[:3]}) "
                         f"while PREPROCESS_VERSION is still {PREPROCESS_VERSION!r}: bump it, retrain, "
                         "and record with `python -m tests.golden_outputs`")


def test_golden_outputs_cover_photos_packshots_and_scenes(golden):
    names, _ = golden
    assert sum(n.startswith("unseen/shifted/") for n in names) == 100
    assert sum(n.startswith("scene:") for n in names) >= 5
    assert len(names) >= 150
