"""ONNX models on onnxruntime: find a shipped model, check it, read what it says about itself,
and run batches through one session."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .classes import CLASS_NAMES, IMAGE_SIZE
from .files import file_digest
from .preprocess import PREPROCESS_VERSION

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "robust"
# Each shipped model runs at the precision models.json prefers for it ("preferred_precision",
# chosen from measurements by benchmarks/choose_precision.py: the faster one at equal accuracy);
# int8 where the manifest says nothing: for the default model it is 2.5x faster at batch 1 and
# 2.8x at batch 256 than fp32 on an AVX512-VNNI CPU and 4x smaller. `--precision` overrides.
DEFAULT_PRECISION = "int8"
PRECISIONS = ("fp32", "int8")
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


class ModelError(Exception):
    """A model cannot be found, fails its checksum, or lacks the expected interface."""


@lru_cache(maxsize=4)
def _read_manifest(path: str, mtime: float) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read the model manifest ({exc})") from None


def load_manifest(path: str | os.PathLike | None = None) -> dict:
    """models.json: {"models": [{name, precision, file, sha256, ...}, ...]}; empty if absent."""
    path = Path(path or MODELS_DIR / "models.json")
    if not path.is_file():
        return {"models": []}
    return _read_manifest(str(path), path.stat().st_mtime)


def manifest_entry(name: str, precision: str, manifest: dict | None = None) -> dict | None:
    manifest = load_manifest() if manifest is None else manifest
    for entry in manifest.get("models", []):
        if entry["name"] == name and entry["precision"] == precision:
            return entry
    return None


def shipped_names(manifest: dict | None = None) -> list[str]:
    manifest = load_manifest() if manifest is None else manifest
    return sorted({entry["name"] for entry in manifest.get("models", [])})


def preferred_precision(model: str, manifest: dict | None = None) -> str:
    """The precision a shipped model runs at unless told otherwise (int8 if models.json has no choice)."""
    manifest = load_manifest() if manifest is None else manifest
    choice = manifest.get("preferred_precision", {}).get(model)
    return choice if choice in PRECISIONS else DEFAULT_PRECISION


def sha256_file(path: str | os.PathLike) -> str:
    return file_digest(path, "sha256")


def _shipped_file(entry: dict) -> Path:
    """A models.json entry's file, there and matching its sha256."""
    path = MODELS_DIR / entry["file"]
    if not path.is_file():
        raise ModelError(f"{path}: shipped model file is missing; reinstall edge-infer")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise ModelError(f"{path}: sha256 {actual[:12]}... does not match the manifest ({entry['sha256'][:12]}...); "
                         "the file is corrupt or was replaced")
    return path


def resolve_end_to_end(model: str) -> tuple[Path, dict]:
    """The shipped end-to-end file of a model (preprocessing inside; models.json "end_to_end"),
    checked against its sha256."""
    entries = load_manifest().get("end_to_end", [])
    for entry in entries:
        if entry["name"] == model:
            return _shipped_file(entry), entry
    shipped = [entry["name"] for entry in entries]
    raise ModelError(f"{model}: no end-to-end model shipped (there is one for: {', '.join(shipped) or 'none'}); "
                     f"build it with `python -m export.e2e --model {model}`")


def resolve_model(model: str, precision: str | None = None) -> tuple[Path, dict | None]:
    """A shipped name (checked against its sha256) or a path to any ONNX or ORT-format file;
    precision None means the model's preferred one."""
    precision = precision or preferred_precision(model)
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    entry = manifest_entry(model, precision)
    if entry is not None:
        return _shipped_file(entry), entry
    path = Path(model)
    if path.is_file():
        return path, None
    names = shipped_names()
    hint = f"shipped models: {', '.join(names)}" if names else "no models are shipped in this install"
    if os.sep in model or model.endswith((".onnx", ".ort")):
        raise ModelError(f"{model}: no such model file")
    raise ModelError(f"unknown model {model!r} at precision {precision}; {hint}")


@dataclass
class ModelInfo:
    path: Path
    metadata: dict  # metadata_props, JSON values decoded
    manifest: dict | None
    class_names: tuple[str, ...] = field(default=CLASS_NAMES)

    @property
    def name(self) -> str:
        return str(self.metadata.get("model_name") or (self.manifest or {}).get("name") or self.path.stem)

    @property
    def precision(self) -> str:
        return str(self.metadata.get("precision") or (self.manifest or {}).get("precision") or "unknown")

    @property
    def warnings(self) -> list[str]:
        """Reasons to distrust this model's answers here; empty when all is well."""
        expected = self.metadata.get("preprocessing")
        if expected and expected != PREPROCESS_VERSION:
            # photo-trained models learn the exact look of one preprocessing version
            return [f"{self.path}: trained for preprocessing {expected!r}, this edge-infer does "
                    f"{PREPROCESS_VERSION!r}; robust-preprocessed photos may be classified worse"]
        return []


def _decode_metadata(raw: dict[str, str]) -> dict:
    decoded = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            decoded[key] = value
    return decoded


def session_options(threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


# Graph optimisers a model asks onnxruntime to leave out: metadata "disabled_optimizers", a JSON
# list. An int8 graph whose first stage stays float (export.quantize.first_stage) needs
# QDQPropagationTransformer off, or the first QuantizeLinear moves above the max-pool, which then
# runs on uint8 in NCHW layout and makes the whole model 2-3x slower.
DISABLED_OPTIMIZERS_KEY = "disabled_optimizers"


def create_session(source: str | bytes, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session for a model file or serialized model, honouring the optimisers it disables.
    Raises ModelError for malformed metadata; onnxruntime's own errors for unreadable files."""
    providers = ["CPUExecutionProvider"]
    session = ort.InferenceSession(source, session_options(threads), providers=providers)
    disabled = optimizers_to_disable(session)
    if disabled:  # known only once the file is read, so the session is made again without them
        session = ort.InferenceSession(source, session_options(threads), providers=providers,
                                       disabled_optimizers=disabled)
    return session


def optimizers_to_disable(model: ort.InferenceSession | str | bytes) -> list[str]:
    """The graph optimisers a model asks to leave out (none for most), read from a session that
    already exists or, for a file or serialized model, from an unoptimised one-thread session."""
    if isinstance(model, ort.InferenceSession):
        session = model
    else:
        probe = ort.SessionOptions()
        probe.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        probe.intra_op_num_threads = probe.inter_op_num_threads = 1
        probe.log_severity_level = 3
        session = ort.InferenceSession(model, probe, providers=["CPUExecutionProvider"])
    value = _decode_metadata(session.get_modelmeta().custom_metadata_map).get(DISABLED_OPTIMIZERS_KEY)
    if value in (None, "", []):
        return []
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        raise ModelError(f"metadata {DISABLED_OPTIMIZERS_KEY!r} must be a JSON list of optimizer names, "
                         f"not {value!r}")
    return value


def run_batched(session: ort.InferenceSession, images: np.ndarray, batch_size: int = 256,
                input_name: str = INPUT_NAME, output_name: str = OUTPUT_NAME) -> np.ndarray:
    """(N, 28, 28[, 1]) floats through `session` in batches; (N, classes) float32 out."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    parts = [session.run([output_name], {input_name: images[i : i + batch_size]})[0]
             for i in range(0, len(images), batch_size)]
    if parts:
        return np.concatenate(parts)
    return np.zeros((0, session.get_outputs()[0].shape[-1]), dtype=np.float32)


class OnnxModel:
    """One onnxruntime session with our interface: image (N,28,28,1) -> probabilities (N,10)."""

    def __init__(self, model: str = DEFAULT_MODEL, precision: str | None = None, threads: int | None = None):
        path, entry = resolve_model(model, precision)
        try:
            self.session = create_session(str(path), threads)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None
        metadata = _decode_metadata(self.session.get_modelmeta().custom_metadata_map)
        names = metadata.get("class_names", CLASS_NAMES)
        self.info = ModelInfo(path=path, metadata=metadata, manifest=entry, class_names=tuple(names))
        self._check_interface()
        self._single = None  # (binding, input, output) for one image, made on first use
        self._single_lock = threading.Lock()

    def _check_interface(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 4:
            raise ModelError(f"{self.info.path}: expected one float32 input of shape (N, 28, 28, 1)")
        shape = inputs[0].shape
        if list(shape[1:]) != [IMAGE_SIZE, IMAGE_SIZE, 1]:
            raise ModelError(f"{self.info.path}: input shape {shape} is not (N, 28, 28, 1)")
        if len(outputs) != 1 or outputs[0].shape[-1] != len(self.info.class_names):
            raise ModelError(f"{self.info.path}: expected one output with {len(self.info.class_names)} classes")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, 28, 28) or (N, 28, 28, 1) floats in [0, 1] to (N, classes) probabilities, in one run."""
        if len(batch) == 1 and self._single_lock.acquire(blocking=False):
            try:
                return self._predict_one(batch)
            finally:
                self._single_lock.release()
        return run_batched(self.session, batch, max(1, len(batch)), self.input_name, self.output_name)

    def _predict_one(self, batch: np.ndarray) -> np.ndarray:
        """One image through input and output buffers bound once: 1.5-4 us less per call than
        `session.run` (which wraps inputs and outputs anew) on the small models, nothing measurable
        on robust (benchmarks/results/iobinding.json). Another thread meanwhile takes the plain path."""
        if self._single is None:
            image = ort.OrtValue.ortvalue_from_shape_and_type([1, IMAGE_SIZE, IMAGE_SIZE, 1], np.float32)
            scores = ort.OrtValue.ortvalue_from_shape_and_type([1, len(self.info.class_names)], np.float32)
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(self.input_name, image)
            binding.bind_ortvalue_output(self.output_name, scores)
            self._single = (binding, image, scores)
        binding, image, scores = self._single
        image.update_inplace(np.ascontiguousarray(batch, dtype=np.float32).reshape(1, IMAGE_SIZE, IMAGE_SIZE, 1))
        self.session.run_with_iobinding(binding)
        return scores.numpy().copy()

    def predict_batched(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return run_batched(self.session, images, batch_size, self.input_name, self.output_name)

    def describe(self) -> dict:
        """What `edge-infer info` shows: the file, its inputs and outputs, metadata, manifest entry, warnings."""
        return {
            "path": str(self.info.path),
            "inputs": [{"name": i.name, "shape": i.shape, "type": i.type} for i in self.session.get_inputs()],
            "outputs": [{"name": o.name, "shape": o.shape, "type": o.type} for o in self.session.get_outputs()],
            "metadata": self.info.metadata,
            "manifest": self.info.manifest,
            "warnings": self.info.warnings,
        }
