"""`classify` on a Ray cluster: a Ray Dataset of images in, a Dataset of the same records out.

    >>> found = find_images("photos/")                                   # doctest: +SKIP
    >>> records = RayClassifier(actors=4).classify(images_dataset(found))  # doctest: +SKIP
    >>> write_records(records, "labels.parquet", top_k=3)                  # doctest: +SKIP

Optional: needs `pip install 'edge-infer[ray]'`. Ray and pyarrow are imported inside functions
only, so this module (and the rest of edge_infer) imports without them.

Each actor decodes, preprocesses and classifies its batches with one Classifier, made once in
the actor; the records are those `Classifier.classify` makes, built by the same code.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

from . import files as image_io
from . import formats
from .classifier import Classifier, Record, run_summary
from .loading import Loaded, load_and_preprocess, load_and_preprocess_bytes
from .runtime import DEFAULT_MODEL

INSTALL_HINT = "pip install 'edge-infer[ray]'"
OUTPUT_KINDS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}


class RayUnavailable(Exception):
    """Ray Data is not installed."""


class SourceError(Exception):
    """The images to classify cannot be found or read as a whole (a file-level problem is a record)."""


def require_ray():
    try:
        import ray
        import ray.data  # the extra: ray alone is not enough
    except ImportError:
        raise RayUnavailable(f"Ray Data is not installed; {INSTALL_HINT}") from None
    return ray


# -- the records, as Arrow ---------------------------------------------------------------------

def record_schema():
    """A Record as an Arrow row; top_k as a list of (label, probability) structs, as Parquet can hold it."""
    import pyarrow as pa

    guess = pa.struct([("label", pa.string()), ("probability", pa.float64())])
    return pa.schema([("path", pa.string()), ("label", pa.string()), ("class_index", pa.int64()),
                      ("confidence", pa.float64()), ("best_label", pa.string()),
                      ("best_class_index", pa.int64()), ("top_k", pa.list_(guess)), ("error", pa.string())])


def records_table(records: list[Record]):
    import pyarrow as pa

    rows = [record.to_dict() for record in records]
    for row in rows:
        row["top_k"] = [{"label": label, "probability": p} for label, p in row["top_k"]]
    return pa.Table.from_pylist(rows, schema=record_schema())


def record_from_row(row: dict) -> Record:
    """One row of a records Dataset back into the Record `Classifier.classify` would give."""
    return Record(**_as_record_dict(dict(row)))


def _as_record_dict(row: dict) -> dict:
    """A row as `Record.to_dict()` gives it (the schema keeps the fields' order), without the
    dataclass: the output is written at driver speed, per row."""
    row["top_k"] = [[guess["label"], guess["probability"]] for guess in row["top_k"] or []]
    return row


def iter_records(records) -> Iterator[Record]:
    """The Records of a records Dataset, streamed to this process."""
    for batch in records.iter_batches(batch_format="pyarrow", batch_size=None):
        yield from (record_from_row(row) for row in batch.to_pylist())


# -- the images --------------------------------------------------------------------------------

@dataclass
class ImageSource:
    """What to classify: local files found as `classify` finds them, or a URI for Ray's reader."""

    source: str
    files: list[image_io.InputFile] | None = None  # None for a URI: Ray lists it, in the cluster
    skipped_files: int = 0
    skipped_folders: list[tuple[str, int]] = field(default_factory=list)


def is_uri(source: str) -> bool:
    return "://" in source


def find_images(source: str, recursive: bool = False) -> ImageSource:
    """A folder, glob, image file or list file (one path a line) expanded as `classify` does; a
    URI (s3://bucket/photos/) is left to Ray's reader. No Ray needed."""
    if is_uri(source):
        return ImageSource(source)
    arguments = _listed_paths(Path(source)) if _is_list_file(source) else [source]
    collected = image_io.collect(arguments, recursive=recursive)
    if arguments == [source] and [item.name for item in collected.files if item.error] == [source]:
        raise SourceError(f"{source}: {collected.files[0].error}")  # missing, no match, unlistable
    return ImageSource(source, collected.files, collected.skipped, collected.skipped_folders)


def _is_list_file(source: str) -> bool:
    return os.path.isfile(source) and not image_io.is_image_name(source)


def _listed_paths(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the list of paths ({exc})") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def images_dataset(found: ImageSource, block_rows: int = 1024, min_blocks: int = 8):
    """A Dataset of image rows: `path` as reported, and `file` (absolute: workers do not share our
    working directory) and `error` for local files, or `bytes` for files Ray read from a URI.

    Local rows go in blocks of at most `block_rows`, and in at least `min_blocks` blocks so that
    every actor gets work."""
    ray = require_ray()
    if found.files is None:
        return _read_uri(ray, found.source)
    import pyarrow as pa

    if not found.files:
        raise SourceError("no images found")
    here = Path.cwd()
    rows = [{"path": item.name, "file": str(here / item.path), "error": item.error} for item in found.files]
    size = max(1, min(block_rows, -(-len(rows) // min_blocks)))
    return ray.data.from_arrow([pa.Table.from_pylist(rows[i : i + size]) for i in range(0, len(rows), size)])


def _read_uri(ray, uri: str):
    extensions = sorted(extension.lstrip(".") for extension in image_io.IMAGE_EXTENSIONS)
    try:
        # no CPU reserved for reading: fetching bytes is I/O (decoding happens in the actors), and
        # read tasks wanting a CPU each would wait for ever behind a pool of actors using all of them
        dataset = ray.data.read_binary_files(uri, include_paths=True, file_extensions=extensions, num_cpus=0)
    except FileNotFoundError:
        raise SourceError(f"{uri}: no such file or directory") from None
    except (OSError, ValueError) as exc:  # no image in it, no access, an unknown scheme
        raise SourceError(f"{uri}: {str(exc).splitlines()[0]}") from None
    scheme = uri.split("://", 1)[0] + "://"
    return dataset.map_batches(partial(_with_scheme, scheme), batch_format="pyarrow", batch_size=None, num_cpus=0)


def _with_scheme(scheme: str, batch):
    """Ray's readers report s3://bucket/key as bucket/key; report what the user can open."""
    import pyarrow as pa

    paths = [path if is_uri(path) else scheme + path for path in batch.column("path").to_pylist()]
    return batch.set_column(batch.schema.get_field_index("path"), "path", pa.array(paths, pa.string()))


# -- classifying, in the actors ----------------------------------------------------------------

@dataclass(frozen=True)
class ModelFile:
    """The model travels to the actors through Ray's object store, so a node needs no copy of a
    custom model file. `content` is the bytes, or a reference to them in the object store (put
    there once for the whole pool)."""

    name: str
    content: object  # bytes | ray.ObjectRef

    def read(self) -> bytes:
        if isinstance(self.content, bytes):
            return self.content
        import ray

        return ray.get(self.content)


class ClassifyBatches:
    """An actor's work: a Classifier made once, in the actor, then image rows to record rows."""

    def __init__(self, model: ModelFile, options: dict):
        threads = _assigned_cpus()
        with tempfile.TemporaryDirectory(prefix="edge-infer-") as folder:
            path = Path(folder) / model.name  # the suffix tells onnxruntime .onnx from .ort
            path.write_bytes(model.read())
            # the session holds the model once created; the file can go
            self.classifier = Classifier(str(path), threads=threads, **options)
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def __call__(self, batch):
        names = batch.column("path").to_pylist()
        loaded = self._map(self._load_bytes if "bytes" in batch.column_names else self._load_file,
                           _image_items(batch))
        return records_table(self.classifier.records_for(names, loaded))

    def _map(self, load: Callable, items: list) -> list[Loaded]:
        return list(self.pool.map(load, items)) if self.pool else [load(item) for item in items]

    def _load_file(self, item: image_io.InputFile) -> Loaded:
        return _never_raising(load_and_preprocess, item, self.classifier.preprocessing)

    def _load_bytes(self, data: bytes) -> Loaded:
        return _never_raising(load_and_preprocess_bytes, data, self.classifier.preprocessing)


def _image_items(batch) -> list:
    """The batch's bytes, or its files to open (`file`, else `path`) with any error already known."""
    columns = batch.column_names
    if "bytes" in columns:
        return batch.column("bytes").to_pylist()
    names = batch.column("path").to_pylist()
    files = batch.column("file").to_pylist() if "file" in columns else names
    errors = batch.column("error").to_pylist() if "error" in columns else [""] * batch.num_rows
    return [image_io.InputFile(Path(file), name, error or "") for file, name, error in zip(files, names, errors)]


def _never_raising(load: Callable, item, method: str) -> Loaded:
    """One odd file must not fail a batch of thousands: what `classify` would raise on (a decoder
    bug, say) becomes that file's error here."""
    try:
        return load(item, method)
    except Exception as exc:  # noqa: BLE001 - reported in the record, like any unreadable file
        return Loaded(None, f"cannot process image ({type(exc).__name__}: {exc})")


def _assigned_cpus() -> int:
    """The CPUs Ray gave this actor: onnxruntime and the decoders use that many threads, not the
    whole node's (which other actors share)."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    return max(1, round(cpus))


class RayClassifier:
    """`Classifier`'s options, run by a pool of Ray actors (one onnxruntime session each)."""

    worker = ClassifyBatches  # what each actor runs (a benchmark may time it)

    def __init__(self, model: str = DEFAULT_MODEL, precision: str | None = None, preprocessing: str = "robust",
                 batch_size: int = 256, top_k: int = 3, min_confidence: float = 0.0, mirror_average: bool = False,
                 actors: int | None = None, cpus_per_actor: int = 1):
        if (actors is not None and actors < 1) or cpus_per_actor < 1:
            raise ValueError("actors and CPUs per actor must be at least 1")
        self.options = dict(precision=precision, preprocessing=preprocessing, batch_size=batch_size, top_k=top_k,
                            min_confidence=min_confidence, mirror_average=mirror_average)
        # checked here, so a bad model or option is one error now rather than a dead actor later
        checker = Classifier(model, **self.options, threads=1, workers=1)
        self.info = checker.model.info
        self.top_k = checker.top_k
        self.model_file = ModelFile(self.info.path.name, self.info.path.read_bytes())
        self.actors, self.cpus_per_actor = actors, cpus_per_actor

    def pool_size(self) -> int:
        """The actors asked for, else as many as the cluster's CPUs hold (connects to Ray)."""
        if self.actors:
            return self.actors
        return max(1, int(require_ray().cluster_resources().get("CPU", 1)) // self.cpus_per_actor)

    def classify(self, images):
        """A Dataset of image rows (see `images_dataset`) to a Dataset of record rows (`record_schema`).

        Failures: a file that cannot be read or decoded is a record with `error`. A worker that
        dies (killed, out of memory, its node lost) is Ray Data's to handle: it restarts the actor
        and runs the batch again, by default without limit (max_restarts and max_task_retries -1;
        we keep that default, which Ray 2.60 deprecates overriding through map_batches)."""
        ray = require_ray()
        model = ModelFile(self.model_file.name, ray.put(self.model_file.content))
        return images.map_batches(
            self.worker, fn_constructor_kwargs={"model": model, "options": self.options},
            batch_size=self.options["batch_size"], batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=self.pool_size()), num_cpus=self.cpus_per_actor)


# -- the output ---------------------------------------------------------------------------------

@dataclass
class Tally:
    """Counts kept while the records stream past, for a summary shaped like `ClassifyResult.summary()`."""

    per_label: Counter = field(default_factory=Counter)
    failed: int = 0

    def add(self, labels: list[str], errors: list[str | None]) -> None:
        for label, error in zip(labels, errors):
            if error:
                self.failed += 1
            else:
                self.per_label[label] += 1

    def summary(self, found: ImageSource) -> dict:
        return run_summary(self.per_label, self.failed, found.skipped_files, found.skipped_folders)


def output_kind(destination: str) -> str:
    kind = OUTPUT_KINDS.get(os.path.splitext(destination)[1].lower())
    if kind is None:
        raise ValueError(f"{destination}: name the output .parquet, .csv or .jsonl")
    return kind


def write_records(records, destination: str | os.PathLike, top_k: int,
                  on_failed: Callable[[str, str], None] | None = None) -> Tally:
    """Stream a records Dataset into one local file, written whole or not at all.

    The rows come to this process batch by batch (memory stays bounded at any size) and go into a
    temporary file beside `destination`, renamed over it at the end (files.write_atomic): a crash
    or Ctrl-C leaves no half-written result. One file, rather than Ray's writers' directory of one
    file per block, because the CSV and JSONL are then exactly what `classify` writes and a
    rerun replaces the whole. The cost is one writer: measured on a busy 2-core machine, about
    110,000 rows/s as CSV or JSONL and 650,000 as Parquet, against some 800 photos/s per 2-core
    node classifying: past about a hundred such nodes, write Parquet."""
    kind = output_kind(str(destination))
    tally = Tally()

    def stream(handle) -> None:
        written = 0
        with _writer(kind, handle, top_k) as write:
            for batch in records.iter_batches(batch_format="pyarrow", batch_size=None):
                _count(batch, tally, on_failed)
                write(batch)
                written += batch.num_rows
        if not written:
            raise SourceError("no images to classify")

    image_io.write_atomic(destination, stream)
    return tally


def _count(batch, tally: Tally, on_failed) -> None:
    labels, errors = batch.column("label").to_pylist(), batch.column("error").to_pylist()
    tally.add(labels, errors)
    if on_failed:
        for path, error in zip(batch.column("path").to_pylist(), errors):
            if error:
                on_failed(path, error)


class _writer:
    """A context manager giving write(arrow_batch) for one output kind, into an open binary handle."""

    def __init__(self, kind: str, handle, top_k: int):
        self.kind, self.handle, self.top_k = kind, handle, top_k

    def __enter__(self) -> Callable:
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            self.parquet = pq.ParquetWriter(self.handle, record_schema())
            return lambda batch: self.parquet.write_table(batch.cast(record_schema()))
        import io

        self.text = io.TextIOWrapper(self.handle, encoding="utf-8", newline="")
        if self.kind == "csv":
            # columns for the requested top-k even if every file failed (where classify has none):
            # the header has to be written before the first row is known
            self.csv = formats.csv_writer(self.text, self.top_k)
            self.csv.writeheader()
            return lambda batch: self.csv.writerows(formats.csv_row(row) for row in _record_dicts(batch))
        return lambda batch: self.text.write(formats.to_jsonl(list(_record_dicts(batch))))

    def __exit__(self, *exc) -> None:
        if self.kind == "parquet":
            self.parquet.close()
        else:
            self.text.flush()
            self.text.detach()  # the handle belongs to write_atomic, which closes it


def _record_dicts(batch) -> Iterator[dict]:
    return (_as_record_dict(row) for row in batch.to_pylist())
