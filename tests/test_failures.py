"""The failure breakdown (edge_infer.evaluation.failures): kinds are measured, counts add up."""

import numpy as np
from PIL import Image

from edge_infer.evaluation import failures
from edge_infer.preprocess import robust

from .scenes import garment_on_floor, packshot


def one_hot(index, second=None):
    p = np.full(10, 0.01, dtype=np.float32)
    p[index] = 0.8
    if second is not None:
        p[second] = 0.1
    return p


def test_a_garment_filling_the_frame_on_a_floor_is_segmented_and_frame_filled():
    photo = garment_on_floor(box=(-40, -30, 340, 430))
    kinds = failures.failure_kinds(photo, robust(photo), truth=0, probabilities=one_hot(8, second=0))
    assert kinds[:1] == ["frame_filled"]
    assert {"said_bag", "near_miss", "segmented"} <= set(kinds)


def test_a_clean_packshot_wrongly_answered_has_only_the_answer_kinds():
    photo = packshot()
    kinds = failures.failure_kinds(photo, robust(photo), truth=5, probabilities=one_hot(3))
    assert kinds == ["footwear"]  # truth is a shoe class; not bag, not a near miss, nothing about the cut


def test_light_on_light_is_low_contrast_and_background_left_is_seen_on_the_edges():
    photo = packshot(garment=(235, 235, 235), background=(250, 250, 250))
    assert "low_contrast" in failures.failure_kinds(photo, robust(photo), 0, one_hot(6))
    grey = np.zeros((28, 28), dtype=np.float32)
    grey[:, :3] = 0.6  # a bright band down the left edge, corners included: background left in
    assert "background_left" in failures.failure_kinds(packshot(), grey, 0, one_hot(6))


def test_summary_counts_each_wrong_answer_once_as_primary_and_sheet_has_a_cell_each():
    found = [failures.Failure("a.jpg", 0, 8, ["frame_filled", "said_bag"]), failures.Failure("b.jpg", 2, 4, []),
             failures.Failure("c.jpg", 2, 4, ["near_miss"])]
    summary = failures.summarise(found, images=10)
    assert summary["wrong"] == 3 and sum(summary["primary"].values()) == 3
    assert summary["primary"]["other"] == 1 and summary["any_kind"]["said_bag"] == 1
    assert summary["confusions"] == {"Pullover -> Coat": 2, "T-shirt/top -> Bag": 1}
    sheet = failures.contact_sheet([(Image.new("RGB", (50, 80)), np.zeros((28, 28)), f) for f in found], columns=2)
    assert sheet.size == (2 * 112 * 2, 2 * (112 + 30))
