"""The Python API behind `edge-infer classify`: files in, one record per file out."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import files as image_io
from .classes import IMAGE_SIZE
from .loading import Loaded, LoadPool, can_fork
from .preprocess import METHODS, to_uint8_image
from .runtime import DEFAULT_MODEL, OnnxModel

UNCERTAIN = "uncertain"
# jobs of this many files per worker or more are decoded in worker processes (edge_infer.loading);
# below it, forking them costs about as much as it saves (2 workers: 64 files;
# benchmarks/classify_speed.py, "threads_or_processes")
FILES_PER_PROCESS = 32


@dataclass
class Record:
    path: str
    label: str = ""
    class_index: int | None = None  # None (null in JSON) when the file failed or the answer is uncertain
    confidence: float | None = None
    best_label: str = ""  # the top guess, kept even when `label` says uncertain
    best_class_index: int | None = None  # its index
    top_k: list = field(default_factory=list)  # [[label, probability], ...]
    error: str | None = None  # why the file could not be classified; None when it was

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClassifyResult:
    """What `Classifier.classify` found: one record per image, and what it passed over.

    Iterating, indexing and len() go to the records, so it reads like the list it extends."""

    records: list[Record]
    skipped_files: int = 0  # non-image files in the folders given
    skipped_folders: list[tuple[str, int]] = field(default_factory=list)  # (sub-folder, images) not entered

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):
        return self.records[index]

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.error]

    def summary(self) -> dict:
        return run_summary(Counter(r.label for r in self.records if not r.error), len(self.failed),
                           self.skipped_files, self.skipped_folders)


def run_summary(per_label: Counter, failed: int, skipped_files: int, skipped_folders: list[tuple[str, int]]) -> dict:
    """What a classification run found, as the CLI prints it (also for runs that stream their records)."""
    classified = sum(per_label.values())
    return {
        "images": classified + failed,
        "classified": classified,
        "failed": failed,
        "skipped_non_images": skipped_files,
        "skipped_folders": [{"path": path, "images": images} for path, images in skipped_folders],
        "per_label": dict(sorted(per_label.items(), key=lambda item: (-item[1], item[0]))),
    }


class Classifier:
    """Classify image files with one ONNX model and one onnxruntime session.

    >>> Classifier().classify(["unseen/"])  # doctest: +SKIP
    """

    def __init__(self, model: str = DEFAULT_MODEL, precision: str | None = None, preprocessing: str = "robust",
                 batch_size: int = 256, threads: int | None = None, workers: int | None = None,
                 top_k: int = 3, min_confidence: float = 0.0, mirror_average: bool = False):
        if preprocessing not in METHODS:
            raise ValueError(f"unknown preprocessing {preprocessing!r}; choose from {', '.join(METHODS)}")
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError("minimum confidence must be between 0 and 1")
        # one onnxruntime thread unless told: the decode workers already keep the cores busy and a
        # second inference thread contends with them (end to end on 2 cores: 28x28 PNGs +9%,
        # 1-MP JPEGs +3%; benchmarks/thread_layout.py, results/thread_layout.json)
        self.model = OnnxModel(model, precision, threads or 1)
        self.preprocessing = preprocessing
        self.batch_size = batch_size
        # one decode thread per core: tiny PNGs are GIL-bound (more threads only contend),
        # large JPEGs decode in C with the GIL released (measured: benchmarks/results/classify_speed_*.json)
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.top_k = max(1, min(top_k, len(self.model.info.class_names)))
        self.min_confidence = min_confidence
        # a garment's mirror image is the same garment: averaging both views costs a second
        # inference (cheap beside decoding a photo); measured in benchmarks/results/evaluation.json
        # ("robust_mirror_average") and the README
        self.mirror_average = mirror_average

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.model.info.class_names

    def classify_arrays(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for already-preprocessed arrays (N, 28, 28[, 1]) in [0, 1]."""
        probabilities = self.model.predict_batched(images, self.batch_size)
        if self.mirror_average:
            mirrored = np.ascontiguousarray(np.asarray(images)[:, :, ::-1])
            probabilities = (probabilities + self.model.predict_batched(mirrored, self.batch_size)) / 2
        return probabilities

    def records_from_probabilities(self, names: list[str], probabilities: np.ndarray) -> list[Record]:
        order = np.argsort(-probabilities, axis=1)[:, : self.top_k]
        records = []
        for name, probs, best in zip(names, probabilities, order):
            index = int(best[0])
            confidence = float(probs[index])
            best_label = self.class_names[index]
            records.append(
                Record(
                    path=name,
                    label=best_label if confidence >= self.min_confidence else UNCERTAIN,
                    class_index=index if confidence >= self.min_confidence else None,
                    confidence=confidence,
                    best_label=best_label,
                    best_class_index=index,
                    top_k=[[self.class_names[int(k)], float(probs[k])] for k in best],
                )
            )
        return records

    def classify(self, inputs: str | os.PathLike | Iterable[str | os.PathLike], recursive: bool = False,
                 save_preprocessed: str | os.PathLike | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> ClassifyResult:
        """Files, folders or glob patterns (one, or several) to one record per image, errors
        included, in order; the result also says what was skipped."""
        if isinstance(inputs, (str, os.PathLike)):
            inputs = [inputs]
        collected = image_io.collect([str(p) for p in inputs], recursive=recursive)
        records = self.classify_files(collected.files, save_preprocessed, on_progress)
        return ClassifyResult(records, collected.skipped, collected.skipped_folders)

    def classify_files(self, files: list[image_io.InputFile], save_preprocessed=None,
                       on_progress: Callable[[int, int], None] | None = None) -> list[Record]:
        """Decode and preprocess the next batch in workers while onnxruntime (which releases
        the GIL) runs the current one. Each worker takes a whole slice of a batch: per-file
        tasks cost more in scheduling than a 28x28 PNG takes to decode. Jobs of FILES_PER_PROCESS
        files per worker or more are loaded in worker processes (`edge_infer.loading`)."""
        saved_base = None
        if save_preprocessed is not None:
            Path(save_preprocessed).mkdir(parents=True, exist_ok=True)
            saved_base = _common_folder([item.name for item in files])
        chunks = [files[i : i + self.batch_size] for i in range(0, len(files), self.batch_size)]
        records: list[Record] = []
        done = 0
        with LoadPool(self.workers, self.preprocessing, processes=self.forks_for(len(files))) as pool:
            pending = pool.submit(chunks[0]) if chunks else []
            for number, chunk in enumerate(chunks):
                loaded = pool.result(pending)
                pending = pool.submit(chunks[number + 1]) if number + 1 < len(chunks) else []
                records += self._records_for(chunk, loaded, save_preprocessed, saved_base)
                done += len(chunk)
                if on_progress:
                    on_progress(done, len(files))
        return records

    def records_for(self, names: list[str], loaded: list[Loaded]) -> list[Record]:
        """One record per loaded file, in order: its answer, or the reason it has none."""
        good = [i for i, item in enumerate(loaded) if item.array is not None]
        batch = np.stack([loaded[i].array for i in good]) if good else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE))
        probabilities = self.classify_arrays(batch)
        by_index = dict(zip(good, self.records_from_probabilities([names[i] for i in good], probabilities)))
        return [by_index.get(i) or Record(path=names[i], error=item.error) for i, item in enumerate(loaded)]

    def forks_for(self, count: int) -> bool:
        """Whether a job of `count` files is loaded in worker processes."""
        return self.workers > 1 and count >= FILES_PER_PROCESS * self.workers and can_fork()

    def _records_for(self, chunk: list[image_io.InputFile], loaded: list[Loaded], save_preprocessed,
                     saved_base: str | None) -> list[Record]:
        records = self.records_for([item.name for item in chunk], loaded)
        if save_preprocessed is not None:
            for item, one in zip(chunk, loaded):
                if one.array is not None:
                    _save_preprocessed(Path(save_preprocessed), os.path.relpath(item.name, saved_base), one.array)
        return records


def _common_folder(names: list[str]) -> str:
    """The deepest folder holding every file, so saved names stay short but distinct."""
    folders = [os.path.dirname(os.path.abspath(name)) for name in names]
    return os.path.commonpath(folders) if folders else "."


def _save_preprocessed(folder: Path, name: str, array: np.ndarray) -> None:
    target = folder / (Path(name).with_suffix("").as_posix().replace("/", "__").lstrip(".") + ".png")
    to_uint8_image(array).save(target)
