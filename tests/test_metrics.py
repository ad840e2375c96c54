import math

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
    assert split == {"cds": {"images": 3, "accuracy": 1 / 3, "accuracy_interval": metrics.wilson_interval(1, 3)},
                     "fpi": {"images": 1, "accuracy": 1.0, "accuracy_interval": metrics.wilson_interval(1, 1)},
                     "xyz": {"images": 0, "accuracy": None, "accuracy_interval": None}}
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


def test_wilson_interval_matches_its_closed_forms_at_the_edges():
    z2 = 1.96 ** 2
    assert metrics.wilson_interval(0, 10) == pytest.approx([0.0, z2 / (10 + z2)])  # none right
    assert metrics.wilson_interval(10, 10) == pytest.approx([10 / (10 + z2), 1.0])  # all right
    assert metrics.wilson_interval(0, 0) is None
    # half right: centred on one half, half-width z / (2 sqrt(n + z^2))
    low, high = metrics.wilson_interval(50, 100)
    assert (low + high) / 2 == pytest.approx(0.5) and (high - low) / 2 == pytest.approx(1.96 / (2 * (100 + z2) ** 0.5))


@given(st.integers(1, 5000), st.data())
def test_wilson_interval_holds_the_estimate_and_narrows_with_more_images(total, data):
    right = data.draw(st.integers(0, total))
    low, high = metrics.wilson_interval(right, total)
    assert 0.0 <= low <= right / total <= high <= 1.0
    narrower_low, narrower_high = metrics.wilson_interval(right * 4, total * 4)
    assert narrower_high - narrower_low < high - low


def test_paired_test_is_the_exact_two_sided_binomial_on_the_images_that_differ():
    right_a = [True] * 10 + [False] * 2 + [True] * 5 + [False] * 7  # 5 both right, 7 both wrong: ignored
    right_b = [False] * 10 + [True] * 2 + [True] * 5 + [False] * 7
    result = metrics.paired_test(right_a, right_b)
    # P(X <= 2) for X ~ Binomial(12, 1/2) is (1 + 12 + 66) / 4096; two-sided doubles it
    assert result == {"only_this": 10, "only_reference": 2, "p_value": pytest.approx(2 * 79 / 4096)}
    assert metrics.paired_test(right_b, right_a)["p_value"] == pytest.approx(result["p_value"])
    assert metrics.paired_test(right_a, right_a) == {"only_this": 0, "only_reference": 0, "p_value": 1.0}
    assert metrics.paired_test([True, False], [False, True])["p_value"] == 1.0  # an even split: no evidence
    with pytest.raises(ValueError, match="same images"):
        metrics.paired_test([True], [True, False])


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=300))
def test_paired_test_p_value_is_a_probability_and_symmetric(pairs):
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    forward, backward = metrics.paired_test(a, b), metrics.paired_test(b, a)
    assert 0.0 < forward["p_value"] <= 1.0 and forward["p_value"] == backward["p_value"]
    assert (forward["only_this"], forward["only_reference"]) == (backward["only_reference"], backward["only_this"])
    # the log-space sum agrees with exact integer arithmetic
    low, n = min(forward["only_this"], forward["only_reference"]), forward["only_this"] + forward["only_reference"]
    exact = min(1.0, 2 * sum(math.comb(n, k) for k in range(low + 1)) / 2 ** n) if n else 1.0
    assert forward["p_value"] == pytest.approx(exact, rel=1e-9)


def test_paired_test_stays_finite_and_fast_on_a_large_test_set():
    right = np.zeros(20_000, dtype=bool)
    right[:10_000] = True
    assert metrics.paired_test(right, ~right)["p_value"] == pytest.approx(1.0)
    lopsided = metrics.paired_test(right, np.zeros_like(right))
    assert lopsided == {"only_this": 10_000, "only_reference": 0, "p_value": 0.0}  # underflows to exactly 0


def test_pooled_paired_test_sums_disjoint_sets_before_testing():
    first = {"only_this": 10, "only_reference": 2, "p_value": 0.04}
    second = {"only_this": 3, "only_reference": 5, "p_value": 0.7}
    pooled = metrics.pooled_paired_test([first, second])
    assert pooled == {"only_this": 13, "only_reference": 7, "p_value": pytest.approx(metrics._two_sided_sign_test(13, 7))}
    assert metrics.pooled_paired_test([]) == {"only_this": 0, "only_reference": 0, "p_value": 1.0}


def test_holm_multiplies_the_smallest_p_by_the_number_of_tests_and_stays_monotone():
    adjusted = metrics.holm_adjusted({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    # sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1: 0.04, 0.09, 0.08 -> 0.09 (never below an earlier one), 0.5
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.5})
    assert metrics.holm_adjusted({"only": 0.03}) == {"only": 0.03}  # one test: nothing to adjust
    assert metrics.holm_adjusted({"a": 0.4, "b": 0.45}) == {"a": 0.8, "b": 0.8}
    assert metrics.holm_adjusted({}) == {}


@given(st.dictionaries(st.text(max_size=3), st.floats(0.0, 1.0), max_size=8))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(p_values):
    adjusted = metrics.holm_adjusted(p_values)
    assert set(adjusted) == set(p_values)
    assert all(p_values[name] <= adjusted[name] <= 1.0 for name in p_values)
    ranked = sorted(p_values, key=p_values.get)
    assert all(adjusted[a] <= adjusted[b] for a, b in zip(ranked, ranked[1:]))
