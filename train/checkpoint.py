"""Continue a run that stopped: `python -m train ... --resume`.

A robust run takes one and a half to two hours here, longer than what is left of a working
session once it starts, and a killed process used to lose all of it. While a run trains, every
finished epoch leaves in `<out>/resume/` the model with its optimizer state (momentum, step
count, so the learning-rate schedule goes on where it was), the history and the time spent.
`--resume` with the same options loads them and trains the remaining epochs; a finished run
deletes the folder. What a resumed run is not: bit-identical to an uninterrupted one (the
augmentation draws from a new seed for the epochs after the break; two uninterrupted runs of
TensorFlow on this CPU are not bit-identical either), and model3's plateau rule starts its
patience count afresh. run.json lists the epochs it resumed at.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras

from .provenance import write_json_atomic

FOLDER = "resume"
STATE = "state.json"


class ResumeError(Exception):
    """A run folder that cannot be continued, or would be overwritten, said in one line."""


@dataclass
class Resumed:
    """Where a stopped run left off."""

    model: keras.Model | None = None
    epochs_done: int = 0
    history: dict = field(default_factory=dict)
    fit_seconds: float = 0.0
    resumed_at: list[int] = field(default_factory=list)


def identity(model: str, seed: int, epochs: int, limit: int | None, recipe: dict, checksums: dict) -> dict:
    """What must be the same for a resumed run to be the run it continues (as JSON would store it)."""
    return json.loads(json.dumps({"model": model, "seed": seed, "epochs": epochs, "limit": limit,
                                  "recipe": recipe, "data_checksums": checksums}))


def refuse_unfinished(out: Path) -> None:
    """A fresh run must not overwrite hours of a stopped one."""
    state = _read_state(out)
    if state is not None:
        raise ResumeError(f"{out} holds an unfinished run ({state['epochs_done']} of "
                          f"{state['identity']['epochs']} epochs): continue it with --resume, "
                          f"or give another --out")


def load(out: Path, expected: dict) -> Resumed:
    """The stopped run in `out`, if it was started with `expected` (see `identity`)."""
    state = _read_state(out)
    if state is None:
        raise ResumeError(f"nothing to resume in {out}: no {FOLDER}/{STATE} (a finished run leaves none)")
    differences = _differences(state["identity"], expected)
    if differences:
        raise ResumeError(f"{out} was started with other options: {'; '.join(differences)}")
    model = keras.models.load_model(out / FOLDER / state["model_file"])
    return Resumed(model, state["epochs_done"], state["history"], state["fit_seconds"],
                   state["resumed_at"] + [state["epochs_done"]])


def finish(out: Path) -> None:
    shutil.rmtree(out / FOLDER, ignore_errors=True)


class LastEpoch(keras.callbacks.Callback):
    """Keeps the model, optimizer and history of the last finished epoch in `<out>/resume/`.

    The model goes to a new file first, then state.json names it, then the older file goes:
    a process killed at any point leaves a state that matches its model file."""

    def __init__(self, out: Path, identity: dict, history: dict, before: Resumed):
        super().__init__()
        self.folder = out / FOLDER
        self.identity, self.history, self.before = identity, history, before
        self._started = 0.0

    def on_train_begin(self, logs=None):
        self._started = time.time()
        self.folder.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        name = f"epoch-{epoch + 1}.keras"
        self.model.save(self.folder / name)
        previous = _read_state(self.folder.parent)
        write_json_atomic(self.folder / STATE, {
            "identity": self.identity, "model_file": name, "epochs_done": epoch + 1,
            "history": self.history, "fit_seconds": self.before.fit_seconds + time.time() - self._started,
            "resumed_at": self.before.resumed_at,
        })
        if previous is not None and previous["model_file"] != name:
            (self.folder / previous["model_file"]).unlink(missing_ok=True)


def _read_state(out: Path) -> dict | None:
    path = Path(out) / FOLDER / STATE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ResumeError(f"{path} cannot be read ({exc}); delete {path.parent} to start afresh") from None


def _differences(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """'epochs 80 (now 90)' for every field that differs, nested fields dotted."""
    out = []
    for key in sorted(set(saved) | set(now)):
        was, is_ = saved.get(key), now.get(key)
        if isinstance(was, dict) and isinstance(is_, dict):
            out += _differences(was, is_, f"{prefix}{key}.")
        elif was != is_:
            out.append(f"{prefix}{key} {was} (now {is_})")
    return out
