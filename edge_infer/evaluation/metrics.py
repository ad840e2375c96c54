"""Scores from predicted probabilities and true labels. Pure NumPy functions."""

from __future__ import annotations

import math

import numpy as np


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    return float((np.asarray(probabilities).argmax(1) == np.asarray(labels)).mean())


def wilson_interval(right: int, total: int, z: float = 1.96) -> list[float] | None:
    """The 95 % (z = 1.96) Wilson score interval of the accuracy right/total; None without images.

    Unlike accuracy +- z * standard error it stays inside [0, 1] and is honest for the small
    folders we score (47 drawings, 65 packshots) and near 100 % (Wilson 1927; Brown, Cai and
    DasGupta 2001 recommend it for small n)."""
    if total <= 0:
        return None
    share = right / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    # the bounds are exactly 0 and 1 when none or all are right; floating point would miss them
    return [0.0 if right == 0 else max(0.0, centre - half), 1.0 if right == total else min(1.0, centre + half)]


def paired_test(right_this, right_reference) -> dict:
    """Two models on the same images: how many only this one got right, only the reference, and
    the exact McNemar p-value (two-sided binomial test on those discordant images: if both models
    were equally accurate, each would be a fair coin's toss).

    A small p (say < 0.05) says so uneven a split is unlikely to be luck of the draw of images; a
    large one says these images cannot tell the two models apart."""
    right_this, right_reference = np.asarray(right_this, dtype=bool), np.asarray(right_reference, dtype=bool)
    if right_this.shape != right_reference.shape:
        raise ValueError(f"paired test needs the same images: {right_this.shape} vs {right_reference.shape}")
    return _discordant_test(int((right_this & ~right_reference).sum()), int((right_reference & ~right_this).sum()))


def pooled_paired_test(tests: list[dict]) -> dict:
    """One paired test over several disjoint sets of images (e.g. two folders of phone photos): the
    `paired_test` counts summed, and the exact McNemar p-value of the sums."""
    return _discordant_test(sum(test["only_this"] for test in tests), sum(test["only_reference"] for test in tests))


def _discordant_test(only_this: int, only_reference: int) -> dict:
    return {"only_this": only_this, "only_reference": only_reference,
            "p_value": _two_sided_sign_test(only_this, only_reference)}


def holm_adjusted(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjustment (Holm 1979) of several tests of one comparison.

    Comparing two models on six folders, one of them will often look different at p < 0.05 by luck
    alone (26 % of the time if the folders were independent, 1 - 0.95**6); after this adjustment,
    "any adjusted p < 0.05" happens by luck at most 5 % of the time, whatever the folders share."""
    adjusted, running = {}, 0.0
    order = sorted(p_values, key=p_values.get)
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[name]))
        adjusted[name] = running
    return adjusted


def _two_sided_sign_test(a: int, b: int) -> float:
    """2 P(X <= min(a, b)) for X ~ Binomial(a + b, 1/2), capped at 1; in logs, so it stays fast
    and finite for tens of thousands of images."""
    n = a + b
    if n == 0:
        return 1.0
    log_total = math.lgamma(n + 1) - n * math.log(2)
    tail = sum(math.exp(log_total - math.lgamma(k + 1) - math.lgamma(n - k + 1)) for k in range(min(a, b) + 1))
    return min(1.0, 2 * tail)


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall per true class; NaN for a class with no examples."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): confidence vs accuracy gap, averaged over equal-width bins."""
    probabilities = np.asarray(probabilities)
    if len(labels) == 0:
        return float("nan")
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def selective_accuracy(confidence, correct, thresholds) -> list[dict]:
    """For each minimum confidence: the share of images answered (`coverage`) and the accuracy
    on those (`accuracy`, None when none are); what `classify --min-confidence` trades."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    rows = []
    for threshold in thresholds:
        answered = confidence >= threshold
        rows.append({"min_confidence": float(threshold),
                     "coverage": float(answered.mean()) if len(answered) else None,
                     "accuracy": float(correct[answered].mean()) if answered.any() else None})
    return rows


def base_name_starts(names: list[str], prefix: str) -> list[bool]:
    """Whether each file's base name starts with `prefix` (realdev names its files <source>_<name>)."""
    return [name.replace("\\", "/").rsplit("/", 1)[-1].startswith(prefix) for name in names]


def score(probabilities: np.ndarray, labels: np.ndarray, num_classes: int = 10) -> dict:
    """Everything the evaluation reports for one set of predictions, as plain JSON-able data."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels)
    matrix = confusion_matrix(probabilities.argmax(1), labels, num_classes) if len(labels) else \
        np.zeros((num_classes, num_classes), dtype=np.int64)
    return {
        "images": int(len(labels)),
        "accuracy": accuracy(probabilities, labels),
        "accuracy_interval": wilson_interval(int((probabilities.argmax(1) == labels).sum()) if len(labels) else 0,
                                             len(labels)),
        "per_class_accuracy": [None if np.isnan(v) else float(v) for v in per_class_accuracy(matrix)],
        "confusion_matrix": matrix.tolist(),
        "ece": expected_calibration_error(probabilities, labels),
        "mean_confidence": float(probabilities.max(1).mean()) if len(labels) else float("nan"),
    }


def accuracy_by_prefix(names: list[str], right: list[bool], prefixes) -> dict:
    """{prefix: {"images", "accuracy"}} over the files whose base name starts with each prefix
    (realdev names its files <source>_<name>); `right` says per file whether the answer was
    right (an unreadable file counts as wrong). Accuracy is None for a prefix with no files;
    "accuracy_interval" is its 95 % Wilson interval."""
    split = {}
    for prefix in prefixes:
        chosen = [ok for ok, member in zip(right, base_name_starts(names, prefix)) if member]
        split[prefix] = {"images": len(chosen), "accuracy": sum(chosen) / len(chosen) if chosen else None,
                         "accuracy_interval": wilson_interval(sum(chosen), len(chosen))}
    return split
