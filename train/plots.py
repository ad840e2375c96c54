"""Training curves per model and the study's comparison chart (matplotlib, headless)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: dict, name: str, path: str | os.PathLike) -> None:
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.get("loss", [])) + 1)
    for key, style in (("accuracy", "-"), ("val_accuracy", "--")):
        if key in history:
            ax_acc.plot(epochs, history[key], style, label=key.replace("_", " "))
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in history:
            ax_loss.plot(epochs, history[key], style, label=key.replace("_", " "))
    ax_acc.set(title=f"{name}: accuracy", xlabel="epoch")
    ax_loss.set(title=f"{name}: loss", xlabel="epoch")
    _save(fig, (ax_acc, ax_loss), path)


def plot_comparison(histories: dict[str, dict], path: str | os.PathLike) -> None:
    """The study's chart: every model's validation accuracy and loss per epoch, side by side."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for name, history in histories.items():
        epochs = range(1, len(history.get("val_accuracy", [])) + 1)
        ax_acc.plot(epochs, history.get("val_accuracy", []), label=name)
        ax_loss.plot(epochs, history.get("val_loss", []), label=name)
    ax_acc.set(title="validation accuracy", xlabel="epoch")
    ax_loss.set(title="validation loss", xlabel="epoch")
    _save(fig, (ax_acc, ax_loss), path)


def _save(fig, axes, path) -> None:
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
