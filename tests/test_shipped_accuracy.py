"""Accuracy floors for the shipped default model (robust, int8) on the bundled labelled folders.

The floors sit one or two images below what the shipped model scores (README, Results): a
changed model, preprocessing or decoding that costs more than that fails here, in the fast tests.
"""

import csv
from pathlib import Path

import pytest

from edge_infer import Classifier

UNSEEN = Path(__file__).resolve().parent.parent / "unseen"
# robust v7 int8 scores 39 of 47 on unseen/ and 96 of 100 on unseen/shifted
FLOORS = {"": 37 / 47, "shifted": 0.94}


@pytest.mark.parametrize("folder", sorted(FLOORS), ids=lambda f: f or "unseen")
def test_shipped_default_keeps_its_accuracy_on_the_bundled_folders(folder):
    root = UNSEEN / folder
    with (root / "labels.csv").open(newline="") as handle:
        truth = {str(root / row["file"]): int(row["class_index"]) for row in csv.DictReader(handle)}
    result = Classifier().classify(sorted(truth))
    assert not result.failed
    right = sum(record.class_index == truth[record.path] for record in result)
    assert right / len(truth) >= FLOORS[folder], f"{right} of {len(truth)} right"
