"""Training curves per model and the study's comparison chart, as PNG files.

The charts are the HTML report's own (edge_infer.evaluation.report), written to disk, so a run
folder and the report show the same picture. Needs matplotlib (the `train` extra has it).
"""

from __future__ import annotations

import os

from edge_infer.evaluation.report import ReportError, comparison_png, require_matplotlib, training_curves_png
from edge_infer.files import write_atomic

try:
    require_matplotlib()
except ReportError as exc:  # callers treat a missing matplotlib as "no plots"
    raise ImportError(str(exc)) from None


def plot_history(history: dict, name: str, path: str | os.PathLike) -> None:
    write_atomic(path, training_curves_png(name, history))


def plot_comparison(histories: dict[str, dict], path: str | os.PathLike) -> None:
    """The study's chart: every model's validation accuracy and loss per epoch, side by side."""
    write_atomic(path, comparison_png(histories))
