import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_infer.evaluation import metrics


def one_hot(indices, classes=3, confidence=1.0):
    probs = np.full((len(indices), classes), (1 - confidence) / (classes - 1))
    probs[np.arange(len(indices)), indices] = confidence
    return probs


def test_accuracy_and_confusion():
    probs = one_hot([0, 1, 2, 2])
    labels = np.array([0, 1, 1, 2])
    assert metrics.accuracy(probs, labels) == 0.75
    matrix = metrics.confusion_matrix(probs.argmax(1), labels, 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    per_class = metrics.per_class_accuracy(matrix)
    assert per_class.tolist() == [1.0, 0.5, 1.0]


def test_per_class_accuracy_is_nan_for_absent_classes():
    matrix = metrics.confusion_matrix(np.array([0]), np.array([0]), 3)
    assert np.isnan(metrics.per_class_accuracy(matrix)[1])


def test_ece_is_zero_when_confidence_matches_accuracy():
    # confidence 0.75 on four predictions, three of them right
    probs = one_hot([0, 0, 0, 0], confidence=0.75)
    assert metrics.expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)


def test_ece_of_a_confidently_wrong_model_is_large():
    probs = one_hot([0, 0], confidence=1.0)
    assert metrics.expected_calibration_error(probs, np.array([1, 1])) == pytest.approx(1.0)


@given(st.lists(st.integers(0, 4), min_size=1, max_size=50), st.integers(0, 1000))
def test_scores_are_consistent(labels, seed):
    labels = np.array(labels)
    probs = np.random.default_rng(seed).dirichlet(np.ones(5), size=len(labels))
    result = metrics.score(probs, labels, 5)
    matrix = np.array(result["confusion_matrix"])
    assert matrix.sum() == len(labels)
    assert np.trace(matrix) / len(labels) == pytest.approx(result["accuracy"])
    assert 0.0 <= result["ece"] <= 1.0


def test_accuracy_is_split_by_file_name_prefix_with_unreadable_files_wrong():
    from edge_infer.evaluation.metrics import accuracy_by_prefix

    names = ["0_tshirt/cds_a.jpg", "0_tshirt/cds_b.jpg", "8_bag/fpi_c.jpg", "cds_broken.jpg"]
    split = accuracy_by_prefix(names, [True, False, True, False], ["cds", "fpi", "xyz"])
    assert split == {"cds": {"images": 3, "accuracy": 1 / 3}, "fpi": {"images": 1, "accuracy": 1.0},
                     "xyz": {"images": 0, "accuracy": None}}
    assert accuracy_by_prefix(["fpi_dir/cds_a.jpg"], [True], ["fpi"])["fpi"]["images"] == 0  # the name, not the folder


def test_selective_accuracy_trades_coverage_for_accuracy():
    from edge_infer.evaluation.metrics import selective_accuracy

    confidence = [0.9, 0.8, 0.55, 0.4, 0.2]
    correct = [True, True, False, True, False]
    rows = selective_accuracy(confidence, correct, [0.0, 0.5, 0.8, 0.95])
    assert [r["coverage"] for r in rows] == [1.0, 0.6, 0.4, 0.0]  # at the threshold counts as answered
    assert rows[0]["accuracy"] == 0.6 and rows[1]["accuracy"] == 2 / 3 and rows[2]["accuracy"] == 1.0
    assert rows[3]["accuracy"] is None
    assert selective_accuracy([], [], [0.5]) == [{"min_confidence": 0.5, "coverage": None, "accuracy": None}]
