"""Continue a run that stopped: `python -m train ... --resume`.

A robust run takes one and a half to two hours here, longer than what is left of a working
session once it starts, and a killed process used to lose all of it. While a run trains, every
finished epoch leaves in `<out>/resume/` the model with its optimizer state (momentum, step
count, so the learning-rate schedule goes on where it was), the best weights so far, the history
and the time spent. `--resume` with the same options and the same training data loads them and
trains the remaining epochs; a finished run deletes the folder. What a resumed run is not:
bit-identical to an uninterrupted one (the augmentation draws from a new seed for the epochs
after the break; two uninterrupted runs of TensorFlow on this CPU are not bit-identical either),
and model3's plateau rule starts its patience count afresh. run.json lists each resume with the
epoch and the commit it went on from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from edge_infer.files import write_atomic

from .provenance import write_json_atomic

FOLDER = "resume"
STATE = "state.json"
LOCK = ".training.lock"


class ResumeError(Exception):
    """A run folder that cannot be continued, or would be overwritten, said in one line."""


@dataclass
class Resumed:
    """Where a stopped run left off (empty for a fresh run)."""

    model: keras.Model | None = None
    epochs_done: int = 0
    history: dict = field(default_factory=dict)
    model_file: str | None = None  # in <out>/resume/
    best_file: str | None = None  # likewise
    fit_seconds: float = 0.0
    wall_seconds: float = 0.0
    git_commit: str | None = None  # the commit the run started from
    resumes: list[dict] = field(default_factory=list)  # [{"epoch": 12, "git_commit": "..."}]


def identity(model: str, seed: int, epochs: int, recipe: dict, teachers: list[dict], arrays) -> dict:
    """What must be the same for a resumed run to be the run it continues (as JSON would store
    it): options, teachers by content, and the training data by content (images, labels, photo
    round trips, real photos: whatever `arrays` holds)."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is not None:
            digest.update(np.ascontiguousarray(array).view(np.uint8).data)
    return json.loads(json.dumps({"model": model, "seed": seed, "epochs": epochs, "recipe": recipe,
                                  "teachers": [t["sha256"] for t in teachers],
                                  "training_data_sha256": digest.hexdigest()}))


def pipeline_seed(seed: int, epochs_done: int) -> int:
    """The data pipeline's seed: the run's own for a fresh run, a fresh stream after a break
    (not `seed + epochs`, which would replay another seed's run)."""
    if not epochs_done:
        return seed
    return int(np.random.SeedSequence([seed, epochs_done]).generate_state(1)[0] >> 1)


def refuse_unfinished(out: Path) -> None:
    """A fresh run must not overwrite hours of a stopped one."""
    state = _read_state(out)
    if state is not None:
        raise ResumeError(f"{out} holds an unfinished run ({state.get('epochs_done')} of "
                          f"{state.get('identity', {}).get('epochs')} epochs): continue it with --resume, "
                          f"or delete {out / FOLDER} to start afresh")


def require_state(out: Path) -> dict:
    """The stopped run's state; fails fast, before any data is loaded, when there is nothing to resume."""
    state = _read_state(out)
    if state is None:
        raise ResumeError(f"nothing to resume in {out}: no {FOLDER}/{STATE} (a finished run leaves none)")
    return state


def load(out: Path, expected: dict) -> Resumed:
    """The stopped run in `out`, if it was started with `expected` (see `identity`)."""
    state = require_state(out)
    try:
        differences = _differences(state["identity"], expected)
        if differences:
            raise ResumeError(f"{out} was started with other options or data: {'; '.join(differences)}")
        path = out / FOLDER / state["model_file"]
        try:
            model = keras.models.load_model(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable model file is the same one-line story
            raise ResumeError(f"{path} cannot be loaded ({type(exc).__name__}: {exc}); "
                              f"delete {out / FOLDER} to start afresh") from None
        return Resumed(model, state["epochs_done"], state["history"], state["model_file"], state["best_file"],
                       state["fit_seconds"], state["wall_seconds"], state["git_commit"], state["resumes"])
    except KeyError as exc:
        raise ResumeError(f"{out / FOLDER / STATE} lacks {exc}; delete {out / FOLDER} to start afresh") from None


@contextmanager
def exclusive(out: Path):
    """Hold `out` for one training process: a second one (a repeated command, a --resume of a
    run still alive) is refused instead of writing the same files."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    with open(Path(out) / LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ResumeError(f"another training process is writing {out}") from None
        yield


def keep_best(out: Path, best_file: str | None, target: Path) -> bool:
    """Copy the best weights from `<out>/resume/` to `target` (whole or not at all)."""
    if best_file is None:
        return False
    write_atomic(target, (out / FOLDER / best_file).read_bytes())
    return True


def finish(out: Path) -> None:
    shutil.rmtree(out / FOLDER, ignore_errors=True)


class LastEpoch(keras.callbacks.Callback):
    """Keeps the model, optimizer, best weights and history of the last finished epoch in
    `<out>/resume/`, and chooses the best weights (on validation accuracy, never the test set).

    New files first, then state.json names them, then the older files go: a process killed at
    any point leaves a state whose files are whole and match its history."""

    def __init__(self, out: Path, identity: dict, history: dict, before: Resumed, git_commit: str,
                 session_started: float):
        super().__init__()
        self.folder = out / FOLDER
        self.identity, self.history, self.before = identity, history, before
        self.git_commit = before.git_commit or git_commit
        self.session_started = session_started  # this process's start, for the wall time
        self.model_file, self.best_file = before.model_file, before.best_file  # what state.json names now
        self.best = max(history.get("val_accuracy", []), default=float("-inf"))
        self._fit_started = 0.0

    def on_train_begin(self, logs=None):
        self._fit_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        replaced = [self.model_file]
        self.model_file = f"epoch-{epoch + 1}.keras"
        self.model.save(self.folder / self.model_file)
        accuracy = (logs or {}).get("val_accuracy", float("-inf"))
        if accuracy > self.best:
            replaced.append(self.best_file)
            self.best, self.best_file = accuracy, f"best-{epoch + 1}.weights.h5"
            self.model.save_weights(self.folder / self.best_file)
        now = time.time()
        write_json_atomic(self.folder / STATE, {
            "identity": self.identity, "model_file": self.model_file, "best_file": self.best_file,
            "epochs_done": epoch + 1, "history": self.history,
            "fit_seconds": self.before.fit_seconds + now - self._fit_started,
            "wall_seconds": self.before.wall_seconds + now - self.session_started,
            "git_commit": self.git_commit, "resumes": self.before.resumes,
        })
        for name in replaced:
            if name is not None:
                (self.folder / name).unlink(missing_ok=True)


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
            out.append(f"{prefix}{key} {_short(was)} (now {_short(is_)})")
    return out


def _short(value) -> str:
    text = str(value)
    return text[:12] + "..." if len(text) > 40 else text
