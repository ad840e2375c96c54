"""Distillation: the training targets mixed with what trained teacher models answer.

One model that learns from the mean of several models' probabilities can come close to their
ensemble at one model's cost (Hinton, Vinyals and Dean 2015, "Distilling the Knowledge in a
Neural Network"). The teachers see the same augmented batch as the student, so their answers
describe exactly the image being learned ("consistent" teaching: Beyer et al. 2022, "Knowledge
distillation: A good teacher is patient and consistent").

    python -m train --model robust --teacher runs/v7/robust --teacher runs/v11/robust --out runs/distilled
    python -m train --model robust --widths 24,48,96 --teacher robust --out runs/narrow-distilled

A teacher is a Keras run folder or model.keras, an ONNX file, or a shipped model's name (its
fp32 file): a fresh clone can distil from the shipped models without their training runs.
ONNX teachers answer through onnxruntime on one thread, inside the input pipeline.

The recipe's label smoothing still applies to the mixed target (so with robust's 0.1 and the
default teacher weight 0.7, the teachers make 63 % of what the loss sees), and the training
accuracy in history.json is agreement with the mixed target's top class; validation and the
checkpoint choice use the true labels.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edge_infer.runtime import ModelError, OnnxModel, resolve_model, shipped_names


class TeacherError(Exception):
    """A --teacher cannot be used (one line, for the command line)."""


def teacher_file(given: str | os.PathLike) -> Path:
    """A teacher's file: the path itself (model.keras or .onnx), model.keras in a run folder, or
    a shipped model's fp32 ONNX file by name."""
    path = Path(given)
    if path.is_dir():
        path = path / "model.keras"
    if path.is_file():
        return path
    if str(given) in shipped_names():
        try:
            return resolve_model(str(given), "fp32")[0]
        except ModelError as exc:
            raise TeacherError(f"teacher {given}: {exc}") from None
    raise TeacherError(f"teacher {given}: no such model file (give a run folder, a model.keras or .onnx "
                       f"file, or a shipped model's name)")


def _onnx_teacher(path: Path, num_classes: int):
    """An ONNX model as a teacher: called on a batch tensor inside tf.data, answers a tensor."""
    try:
        model = OnnxModel(str(path), threads=1)  # the student's step has the cores
    except ModelError as exc:
        raise TeacherError(f"teacher {exc}") from None

    def answer(images, training=False):
        probabilities = tf.numpy_function(lambda batch: model.predict_batched(batch, len(batch) or 1), [images],
                                          tf.float32, stateful=False)
        probabilities.set_shape([None, num_classes])
        return probabilities

    return answer


@dataclass
class Teachers:
    models: list = field(default_factory=list)  # frozen Keras models, or callables around ONNX ones
    records: list[dict] = field(default_factory=list)  # {"file", "sha256"} of what was loaded, for run.json


def load_teachers(paths, input_shape: tuple[int, ...], num_classes: int, bfloat16: bool = False,
                  out: str | os.PathLike | None = None) -> Teachers:
    """The teachers, each called on a batch tensor; each must take `input_shape` and answer
    `num_classes` probabilities. A teacher inside the run folder `out` is refused (the run would overwrite it).

    With `bfloat16`, their hidden layers compute in bfloat16 (1.7x faster here on AMX: the
    teachers' answers cost as much as the student's own step otherwise); probabilities stay float32.
    """
    teachers = Teachers()
    for path in map(teacher_file, paths):
        if out is not None and path.resolve().is_relative_to(Path(out).resolve()):
            raise TeacherError(f"teacher {path}: is inside the output folder {out}, which training "
                               f"overwrites; give another --out")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if path.suffix == ".onnx":
            model = _onnx_teacher(path, num_classes)  # OnnxModel checks the (N, 28, 28, 1) -> classes interface
        else:
            model = _keras_teacher(path, input_shape, num_classes)
            if bfloat16:
                model = _bfloat16_copy(model)
        probe = keras.ops.convert_to_numpy(model(tf.zeros((1, *input_shape)), training=False))
        if probe.shape[-1] != num_classes or probe.min() < 0 or abs(float(probe.sum()) - 1.0) > 1e-3:
            raise TeacherError(f"teacher {path}: does not answer {num_classes} probabilities (a softmax output); "
                               f"its answers sum to {float(probe.sum()):.3g}")
        teachers.models.append(model)
        teachers.records.append({"file": str(path.resolve()), "sha256": digest})
    return teachers


def _keras_teacher(path: Path, input_shape: tuple[int, ...], num_classes: int):
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds for a file that is not a model
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise TeacherError(f"teacher {path}: cannot be loaded ({type(exc).__name__}: {reason})") from None
    if tuple(model.input_shape[1:]) != tuple(input_shape) or model.output_shape[-1] != num_classes:
        raise TeacherError(f"teacher {path}: takes {model.input_shape[1:]} and answers "
                           f"{model.output_shape[-1]} classes; the student takes {tuple(input_shape)} "
                           f"and answers {num_classes}")
    model.trainable = False
    return model


def _bfloat16_copy(model):
    """`model` rebuilt with every layer but the last under the mixed_bfloat16 policy, same weights."""
    config = model.get_config()
    for layer in config["layers"][:-1]:
        if layer["class_name"] != "InputLayer" and "dtype" in layer["config"]:
            layer["config"]["dtype"] = "mixed_bfloat16"
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    copy.trainable = False
    return copy


def soft_targets(labels, teacher_probabilities, teacher_weight: float):
    """(1 - w) * labels + w * the teachers' mean probabilities; rows still sum to one."""
    mean = tf.reduce_mean(tf.stack([tf.cast(p, labels.dtype) for p in teacher_probabilities]), axis=0)
    return (1.0 - teacher_weight) * labels + teacher_weight * mean


def with_teachers(dataset: tf.data.Dataset, teachers: list, teacher_weight: float) -> tf.data.Dataset:
    """The (images, labels) batches of `dataset` with labels replaced by their soft targets."""
    def teach(images, labels):
        answers = [teacher(images, training=False) for teacher in teachers]
        return images, soft_targets(labels, answers, teacher_weight)

    return dataset.map(teach, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
