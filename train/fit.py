"""The training loop: one model by name, to runs/<name>/ with everything needed to trust it."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edge_infer.classes import NUM_CLASSES

from . import augment, checkpoint, data as data_module, distill, photo_pool, roundtrip as photo_roundtrip
from .models import REGISTRY, Recipe
from .provenance import git_commit, write_json_atomic


@keras.saving.register_keras_serializable(package="train")  # a resumed run loads it with the optimizer
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to the peak over the first 15% of steps, then cosine down to ~0."""

    def __init__(self, total_steps: int, peak: float, warmup_fraction: float = 0.15):
        self.total_steps = total_steps
        self.peak = peak
        self.warmup_fraction = warmup_fraction

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = max(1.0, self.total_steps * self.warmup_fraction)
        rising = self.peak * step / warmup
        progress = tf.clip_by_value((step - warmup) / max(1.0, self.total_steps - warmup), 0.0, 1.0)
        falling = self.peak * 0.5 * (1.0 + tf.cos(math.pi * progress))
        return tf.where(step < warmup, rising, falling)

    def get_config(self):
        return {"total_steps": self.total_steps, "peak": self.peak, "warmup_fraction": self.warmup_fraction}


class AugmentSchedule(keras.callbacks.Callback):
    """Full augmentation strength for the first 70% of epochs, then linear down to `final`."""

    def __init__(self, strength: tf.Variable, epochs: int, final: float, hold_fraction: float = 0.7):
        super().__init__()
        self.strength, self.epochs, self.final, self.hold = strength, epochs, final, hold_fraction

    def value(self, epoch: int) -> float:
        start = int(self.epochs * self.hold)
        if epoch < start or self.epochs - start <= 1:
            return 1.0
        progress = (epoch - start) / (self.epochs - 1 - start)
        return 1.0 + (self.final - 1.0) * progress

    def on_epoch_begin(self, epoch, logs=None):
        self.strength.assign(self.value(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["augment_strength"] = float(self.strength.numpy())


class EpochLog(keras.callbacks.Callback):
    """Adds learning rate and epoch time to the logs and rewrites history.json every epoch,
    so a run stopped half-way still leaves its curves behind."""

    def __init__(self, path: Path, history: dict[str, list[float]] | None = None):
        super().__init__()
        self.path = path
        self.history: dict[str, list[float]] = history or {}
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs["epoch_seconds"] = time.perf_counter() - self._start
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        write_json_atomic(self.path, self.history)


def make_optimizer(recipe: Recipe, steps_per_epoch: int, epochs: int):
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam()  # the study's default learning rate (0.001)
    if recipe.optimizer == "sgd-onecycle":
        schedule = OneCycle(steps_per_epoch * epochs, recipe.peak_learning_rate)
        return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def versions() -> dict[str, str]:
    import onnxruntime

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _with_photos(x_train, y_train, roundtrip, recipe: Recipe, seed: int):
    """Append the recipe's real photos, class-balanced; a photo is its own round trip."""
    source = photo_pool.POOL_FILE if recipe.photos == "pool" else recipe.photos
    photos = photo_pool.sample_photographers(photo_pool.load_photos(source, split="train"),
                                             recipe.photos_fraction, seed)
    order = photo_pool.balanced_repeats(photos.labels, recipe.photos_per_class, max_repeat=10)
    extra = data_module.to_model_input(photos.images[order])
    x_train = np.concatenate([x_train, extra])
    y_train = np.concatenate([y_train, photos.labels[order]])
    if roundtrip is not None:
        roundtrip = np.concatenate([roundtrip, extra])
    summary = {"source": str(source), "photos": len(photos.labels), "samples": len(order),
               "photographers": len(set(photos.groups)),
               "per_class": np.bincount(photos.labels, minlength=NUM_CLASSES).tolist()}
    return x_train, y_train, roundtrip, summary


def train_model(name: str, out: str | os.PathLike, epochs: int | None = None, seed: int = 0,
                data_dir=None, limit: int | None = None, cache_dir: str | os.PathLike | None = None,
                workers: int = 2, verbose: int = 2, allow_download: bool = True, resume: bool = False,
                **overrides) -> dict:
    """Train `name` and write model.keras, history.json, run.json (and plots) into `out`.

    `overrides` replace recipe fields (e.g. augment="basic") for ablations; run.json records them.
    The photo round trip is cached in `cache_dir` (default: `.cache` beside `out`).
    `resume` continues the stopped run in `out` (same arguments; `train.checkpoint`); without
    it, a stopped run in `out` is refused rather than overwritten.
    """
    spec = REGISTRY[name]
    recipe = dataclasses.replace(spec.recipe, **overrides)
    epochs = recipe.epochs if epochs is None else epochs
    out = Path(out)
    (checkpoint.require_state if resume else checkpoint.refuse_unfinished)(out)
    started = time.time()
    commit = git_commit()  # the code that trains, not whatever is checked out when it ends
    keras.utils.set_random_seed(seed)
    log = (lambda message: print(f"[{name}] {message}", flush=True)) if verbose else (lambda message: None)
    data = data_module.load(data_dir, limit=limit, allow_download=allow_download)
    teachers = distill.load_teachers(recipe.teachers, data.x_train.shape[1:], NUM_CLASSES, recipe.mixed_bfloat16, out)
    out.mkdir(parents=True, exist_ok=True)  # only once there is data: a failed start leaves nothing behind
    with checkpoint.exclusive(out):
        roundtrip = _roundtrip_for(data, recipe, seed, out.parent / ".cache" if cache_dir is None else cache_dir,
                                   workers, log)
        photo_summary = None
        if recipe.photos:
            x_train, y_train, roundtrip, photo_summary = _with_photos(data.x_train, data.y_train, roundtrip,
                                                                      recipe, seed)
            data = dataclasses.replace(data, x_train=x_train, y_train=y_train)
            log(f"{photo_summary['photos']} real photos mixed in as {photo_summary['samples']} samples per epoch")
        run_identity = checkpoint.identity(name, seed, epochs, recipe.__dict__, teachers.records,
                                           (data.x_train, data.y_train, roundtrip, data.x_val, data.y_val))
        resumed = checkpoint.load(out, run_identity) if resume else checkpoint.Resumed()
        model, history, stopped, best_file, fit_seconds = _train(spec, recipe, data, roundtrip, teachers, resumed,
                                                          run_identity, out, epochs, seed, commit, started,
                                                          verbose, log)
        best_path = out / "best.weights.h5"
        kept = checkpoint.keep_best(out, best_file, best_path)
        final = _best_float32_copy(spec, recipe, model, best_path if kept else None)
        test_loss, test_accuracy = final.evaluate(
            data.x_test, keras.utils.to_categorical(data.y_test, NUM_CLASSES), batch_size=512, verbose=0
        )
        final.save(out / "model.keras")
        write_json_atomic(out / "history.json", history)  # the history of the epochs the model has
        run = {
            "model": name,
            "summary": _summary(spec.summary, recipe),
            "seed": seed,
            "epochs_requested": epochs,
            "epochs_run": len(history.get("loss", [])),
            "stopped_early": stopped,
            "resumed": resumed.resumes,
            "params": int(final.count_params()),
            "study_params": recipe.study_params,
            "study_test_accuracy": recipe.study_test_accuracy,
            "recipe": recipe.__dict__,
            "train_images": len(data.x_train),
            "photos": photo_summary,
            "teachers": teachers.records,
            "validation_images": len(data.x_val),
            "test_images": len(data.x_test),
            "best_val_accuracy": max(history.get("val_accuracy", [float("nan")])),
            "test_accuracy": float(test_accuracy),
            "test_loss": float(test_loss),
            "fit_seconds": round(fit_seconds, 1),
            "wall_seconds": round(resumed.wall_seconds + time.time() - started, 1),
            "data_source": data.source,
            "data_checksums": data.checksums,
            "versions": versions(),
            "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()},
            "git_commit": resumed.git_commit or commit,
            "limit": limit,
        }
        write_json_atomic(out / "run.json", run)
        if not stopped:
            checkpoint.finish(out)
    _plot(history, name, out)
    log(f"test accuracy {test_accuracy:.4f} ({run['epochs_run']} epochs, {run['params']} params, {fit_seconds:.0f} s)")
    return run


def _train(spec, recipe: Recipe, data, roundtrip, teachers, resumed: checkpoint.Resumed, run_identity: dict,
           out: Path, epochs: int, seed: int, commit: str, started: float, verbose: int, log):
    """The epochs still to run, from scratch or from where `resumed` left off. Returns the model,
    the history, whether it was stopped, the best weights' file in <out>/resume/ (None before
    the first epoch ends) and the fit time."""
    if resumed.epochs_done:
        resumed.resumes.append({"epoch": resumed.epochs_done, "git_commit": commit})
        log(f"resuming after epoch {resumed.epochs_done} of {epochs}")
    model = resumed.model or _compiled_model(spec, recipe, math.ceil(len(data.x_train) / recipe.batch_size), epochs)
    seed_now = checkpoint.pipeline_seed(seed, resumed.epochs_done)  # new augmentations after a break
    if seed_now != seed:
        keras.utils.set_random_seed(seed_now)
    strength = augment.new_strength()
    train_ds = augment.training_dataset(
        data.x_train, data.y_train, recipe.batch_size, seed_now, NUM_CLASSES,
        roundtrip=roundtrip, augment=recipe.augment in ("basic", "photo"), vertical_flip=recipe.vertical_flip,
        strength=strength, heavy_fraction=recipe.heavy_fraction,
        corruption_mix=recipe.corruption_mix, corruption_mix_classes=recipe.corruption_mix_classes,
    )
    if teachers.models:
        train_ds = distill.with_teachers(train_ds, teachers.models, recipe.teacher_weight)
        log(f"{len(teachers.models)} teacher(s) give {recipe.teacher_weight:.0%} of every target "
            f"({recipe.teacher_weight * (1 - recipe.label_smoothing):.0%} after label smoothing)")
    epoch_log = EpochLog(out / "history.json", resumed.history)
    last = checkpoint.LastEpoch(out, run_identity, epoch_log.history, resumed, commit, started)
    callbacks = _callbacks(recipe, epochs, strength, epoch_log) + [last]
    fit_start = time.time()
    stopped = False
    if resumed.epochs_done < epochs:
        stopped = _fit(model, train_ds, data, epochs, callbacks, verbose, log, resumed.epochs_done)
    return model, epoch_log.history, stopped, last.best_file, resumed.fit_seconds + time.time() - fit_start


def _roundtrip_for(data, recipe: Recipe, seed: int, cache_dir, workers: int, log) -> np.ndarray | None:
    """The photo round trip of the training images, when the recipe asks for it."""
    if recipe.augment != "photo":
        return None
    train_uint8 = np.rint(data.x_train[..., 0] * 255).astype(np.uint8)
    started = time.time()
    roundtrip = photo_roundtrip.roundtrip_images(train_uint8, seed, cache_dir, workers=workers)
    roundtrip = photo_roundtrip.with_footwear_pairs(roundtrip, train_uint8, data.y_train, recipe.footwear_pairs,
                                                    seed, cache_dir, workers)
    log(f"photo round-trip images ready ({time.time() - started:.0f} s"
        + (f"; {recipe.footwear_pairs:.0%} of the shoes as pairs)" if recipe.footwear_pairs > 0 else ")"))
    return roundtrip


def _summary(summary: str, recipe: Recipe) -> str:
    """The registry's one line, plus the architecture overrides of a variant (its model card says it)."""
    variant = ([f"{recipe.block} blocks"] if recipe.block != "conv" else []) + (
        [f"widths {','.join(map(str, recipe.widths))}"] if recipe.widths else [])
    return f"{summary} (variant: {'; '.join(variant)})" if variant else summary


def _compiled_model(spec, recipe: Recipe, steps_per_epoch: int, epochs: int):
    """The model built under the recipe's precision policy, compiled with its optimizer and loss."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if recipe.mixed_bfloat16 else "float32")
    try:
        model = spec.build_for(recipe)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(
        optimizer=make_optimizer(recipe, steps_per_epoch, epochs),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def _callbacks(recipe: Recipe, epochs: int, strength, epoch_log: EpochLog) -> list:
    """The schedule and the log; the best weights and what --resume needs are
    `checkpoint.LastEpoch`'s, which goes last so that it saves what these have changed."""
    callbacks = [AugmentSchedule(strength, epochs, recipe.final_augment_strength), epoch_log]
    if recipe.reduce_lr_on_plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=5))
    return callbacks


def _fit(model, train_ds, data, epochs: int, callbacks: list, verbose: int, log, initial_epoch: int = 0) -> bool:
    """Fit; Ctrl-C stops early and keeps the best checkpoint (and what --resume needs).
    Returns whether it was stopped."""
    val_ds = (data.x_val, keras.utils.to_categorical(data.y_val, NUM_CLASSES))
    try:
        model.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch, validation_data=val_ds,
                  callbacks=callbacks, verbose=verbose, shuffle=False)  # tf.data already reshuffles every epoch
    except KeyboardInterrupt:
        log("stopped; keeping the best checkpoint so far (--resume continues the run)")
        return True
    return False


def _best_float32_copy(spec, recipe: Recipe, model, best_path: Path | None):
    """A float32 copy (export and the runtime want float32 graphs) with the best validation
    weights (the model's own when stopped before the first epoch ended)."""
    final = spec.build_for(recipe)
    final.set_weights(model.get_weights())
    if best_path is not None:
        final.load_weights(best_path)
    final.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    return final


def _plot(history: dict, name: str, out: Path) -> None:
    try:
        from . import plots

        plots.plot_history(history, name, out / "curves.png")
    except ImportError:  # matplotlib is optional
        pass
