"""How right and how robust a model is: clean test set, corruption suite, labelled folders.

Library functions return plain data (dicts of numbers); `cli.py` formats them.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import corruptions, metrics
from ..classes import CLASS_NAMES
from ..datasets import to_model_input
from ..classifier import Classifier
from ..loading import LoadPool
from ..files import InputFile
from ..formats import variant
from ..preprocess import robust


class EvaluationError(Exception):
    """Nothing can be evaluated as asked (no data, bad folder, unknown model): one line for the user."""


class LabelsError(EvaluationError):
    """A folder's labels.csv is missing or malformed."""


@dataclass(frozen=True)
class LabelledFolder:
    root: Path
    files: list[InputFile]
    labels: np.ndarray


def read_labelled_folder(folder: str | Path) -> LabelledFolder:
    """A folder with labels.csv (columns file, class_index; file relative to the folder)."""
    root = Path(folder)
    table = root / "labels.csv"
    if not table.is_file():
        raise LabelsError(f"{root}: no labels.csv (columns: file,class_index)")
    files, labels = [], []
    try:
        with table.open(newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    index = int(row["class_index"])
                    name = row["file"]
                except (KeyError, TypeError, ValueError):
                    raise LabelsError(f"{table}:{line}: needs 'file' and an integer 'class_index'") from None
                if not 0 <= index < len(CLASS_NAMES):
                    raise LabelsError(f"{table}:{line}: class_index {index} is not 0-{len(CLASS_NAMES) - 1}")
                files.append(InputFile(root / name, name))
                labels.append(index)
    except OSError as exc:
        raise LabelsError(f"{table}: cannot read ({exc.strerror or exc})") from None
    return LabelledFolder(root, files, np.array(labels, dtype=np.int64))


def evaluate_folder(classifier: Classifier, folder: LabelledFolder, preprocessing: str) -> dict:
    """Scores on a labelled folder. Unreadable files are listed and count as wrong in `accuracy`."""
    good, arrays, errors = [], [], []
    with LoadPool(classifier.workers, preprocessing, processes=classifier.forks_for(len(folder.files))) as pool:
        everything = pool.result(pool.submit(folder.files))
    for i, (item, loaded) in enumerate(zip(folder.files, everything)):
        if loaded.array is None:
            errors.append({"path": item.name, "error": loaded.error})
        else:
            good.append(i)
            arrays.append(loaded.array)
    probabilities = classifier.classify_arrays(np.stack(arrays)) if arrays else np.zeros((0, len(CLASS_NAMES)))
    labels = folder.labels[good]
    result = metrics.score(probabilities, labels, len(CLASS_NAMES))
    if len(folder.files):
        right = int((probabilities.argmax(1) == labels).sum())
        result["accuracy"] = float(right / len(folder.files))
        result["accuracy_interval"] = metrics.wilson_interval(right, len(folder.files))
    result["images"] = len(folder.files)
    result["errors"] = errors
    result["predictions"] = [
        {"path": folder.files[i].name, "label": int(folder.labels[i]), "predicted": int(p.argmax()),
         "confidence": float(p.max())}
        for i, p in zip(good, probabilities)
    ]
    return result


def evaluate_corruptions(classifier: Classifier, images: np.ndarray, labels: np.ndarray,
                         names: list[str] | None = None, severities=corruptions.SEVERITIES,
                         seed: int = 0, cache: dict | None = None, through_preprocessing: bool = False) -> dict:
    """Accuracy per corruption and severity on uint8 (N, 28, 28) images.

    With `through_preprocessing`, each corrupted image goes through the runtime's robust
    preprocessing first, as a photo would: that scores the product (which undoes a light
    background, a shift or a faded contrast) rather than the bare model. `cache` (a dict kept
    by the caller) holds the inputs, so several models are scored on exactly the same ones."""
    cache = {} if cache is None else cache
    names = list(corruptions.CORRUPTIONS) if names is None else names
    table = {}
    for name in names:
        table[name] = {}
        for severity in severities:
            key = (name, severity, seed, len(images), through_preprocessing)
            if key not in cache:
                corrupted = corruptions.corrupt(images, name, severity, seed)
                cache[key] = (np.stack([robust(Image.fromarray(image, "L")) for image in corrupted])
                              if through_preprocessing else to_model_input(corrupted))
            probabilities = classifier.classify_arrays(cache[key])
            table[name][str(severity)] = metrics.accuracy(probabilities, labels)
    per_corruption = {name: float(np.mean(list(row.values()))) for name, row in table.items()}
    return {
        "images": int(len(labels)),
        "seed": seed,
        "through_preprocessing": through_preprocessing,
        "accuracy": table,
        "mean_per_corruption": per_corruption,
        "mean_corruption_accuracy": float(np.mean(list(per_corruption.values()))) if per_corruption else None,
    }


def evaluate_model(classifier: Classifier, test_images: np.ndarray | None = None,
                   test_labels: np.ndarray | None = None, folders: list[LabelledFolder] = (),
                   corruption_images: int = 0, corruption_names: list[str] | None = None,
                   seed: int = 0, corruption_cache: dict | None = None,
                   through_preprocessing: bool = False, right_answers: dict | None = None) -> dict:
    """Everything for one model and precision. `test_images` are uint8 (N, 28, 28).

    `right_answers`, when given, receives which images it got right, for paired tests: a bool
    array under "clean", and under "folders" per folder and preprocessing method (every file,
    unreadable ones wrong)."""
    started = time.perf_counter()
    info = classifier.model.info
    result = {"model": info.name, "precision": info.precision, "path": str(info.path),
              "params": info.metadata.get("params"), "mirror_average": classifier.mirror_average}
    if test_images is not None:
        probabilities = classifier.classify_arrays(to_model_input(test_images))
        result["clean"] = metrics.score(probabilities, test_labels, len(CLASS_NAMES))
        if right_answers is not None:
            right_answers["clean"] = probabilities.argmax(1) == test_labels
        if corruption_images:
            subset = np.random.default_rng(seed).permutation(len(test_images))[:corruption_images]
            subset.sort()
            clean_subset = metrics.accuracy(probabilities[subset], test_labels[subset])
            variants = {"corruptions": False}
            if through_preprocessing:
                variants["corruptions_through_preprocessing"] = True
            for key, through in variants.items():
                suite = evaluate_corruptions(classifier, test_images[subset], test_labels[subset],
                                             corruption_names, seed=seed, cache=corruption_cache,
                                             through_preprocessing=through)
                suite["clean_accuracy_same_images"] = clean_subset
                if suite["mean_corruption_accuracy"] is not None and clean_subset > 0:
                    suite["relative_drop"] = (clean_subset - suite["mean_corruption_accuracy"]) / clean_subset
                result[key] = suite
    result["folders"] = {}
    for folder in folders:
        scores = {method: evaluate_folder(classifier, folder, method) for method in ("robust", "plain")}
        result["folders"][str(folder.root)] = scores
        if right_answers is not None:
            right_answers.setdefault("folders", {})[str(folder.root)] = {
                method: right_per_file(found, folder) for method, found in scores.items()}
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def evaluate(pairs: list[tuple[str, str]], folders=(), data_dir=None, test_set: bool = True,
             corruption_images: int = 0, threads: int | None = None, corruption_names: list[str] | None = None,
             seed: int = 0, through_preprocessing: bool = False, mirror_average: bool = False,
             on_model=None, on_warning=None) -> list[dict]:
    """`evaluate_model` for each (model, precision), with the data loaded once and the corrupted
    images shared between models. Raises EvaluationError when there is nothing to score.
    `on_model(name, precision)` is called before each model, `on_warning(message)` for each
    warning about a model (e.g. made for another preprocessing version)."""
    from .. import datasets
    from ..runtime import ModelError

    unknown = sorted(set(corruption_names or ()) - set(corruptions.CORRUPTIONS))
    if unknown:
        raise EvaluationError(f"unknown corruption {', '.join(unknown)}; "
                              f"choose from {', '.join(corruptions.CORRUPTIONS)}")
    labelled = [read_labelled_folder(folder) for folder in folders]
    test = None
    if test_set:
        try:
            test = datasets.load_split("test", datasets.find_data_dir(data_dir))
        except datasets.DatasetError as exc:
            raise EvaluationError(f"{exc} (or pass --no-test-set to score only folders)") from None
    elif not labelled:
        raise EvaluationError("nothing to evaluate: give labelled folders or drop --no-test-set")
    results, corrupted, answers = [], {}, []
    for name, precision in pairs:
        if on_model:
            on_model(name, precision)
        try:
            classifier = Classifier(name, precision, threads=threads, mirror_average=mirror_average)
        except ModelError as exc:
            raise EvaluationError(str(exc)) from None
        for message in classifier.model.info.warnings:
            if on_warning:
                on_warning(message)
        answers.append({})
        results.append(evaluate_model(classifier, test.images if test else None, test.labels if test else None,
                                      labelled, corruption_images if test else 0, corruption_names, seed,
                                      corrupted, through_preprocessing, right_answers=answers[-1]))
    compare_with_reference(results, answers)
    return results


def right_per_file(scores: dict, folder: LabelledFolder) -> np.ndarray:
    """Per file of the folder, in its order, whether `evaluate_folder`'s answer was right (an
    unreadable file is wrong). Its predictions and errors keep the files' order, so walking both
    pairs every answer with its own file, even a file listed twice."""
    unreadable = {error["path"] for error in scores["errors"]}
    answers = iter(scores["predictions"])
    right = []
    for item in folder.files:
        if item.name in unreadable:
            right.append(False)
        else:
            answer = next(answers)
            right.append(answer["predicted"] == answer["label"])
    return np.array(right, dtype=bool)


def _label(result: dict) -> str:
    return f"{result['model']}/{variant(result)} ({result['path']})"


def compare_with_reference(results: list[dict], answers: list[dict]) -> None:
    """Add to every result but the first a "compared_with" entry: on the same images (the test
    set, each folder and method), how many only it got right, only the reference, and the exact
    McNemar p-value (metrics.paired_test). The reference is the first result at the same
    precision (so model B int8 is compared with model A int8, not A fp32), or the very first
    when it is itself the first at its precision (then: int8 against fp32)."""
    for i, (result, mine) in enumerate(zip(results, answers)):
        if i == 0:
            continue
        same = [j for j, other in enumerate(results) if variant(other) == variant(result)]
        reference = same[0] if same[0] != i else 0
        theirs = answers[reference]
        comparison = {"reference": _label(results[reference]), "reference_index": reference}
        if "clean" in mine and "clean" in theirs:
            comparison["clean"] = metrics.paired_test(mine["clean"], theirs["clean"])
        comparison["folders"] = {folder: {method: metrics.paired_test(right, theirs["folders"][folder][method])
                                          for method, right in methods.items()}
                                 for folder, methods in mine.get("folders", {}).items()}
        result["compared_with"] = comparison
