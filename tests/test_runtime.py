"""Shipped models: manifest accurate, metadata self-describing, tampering refused."""

import shutil

import numpy as np
import pytest

from edge_infer import CLASS_NAMES, runtime
from edge_infer.runtime import ModelError, OnnxModel

from .conftest import with_preprocessing

ENTRIES = runtime.load_manifest()["models"]


def test_every_shipped_name_has_both_precisions():
    pairs = {(e["name"], e["precision"]) for e in ENTRIES}
    assert {"model1", "model2", "model3", "robust"} <= {name for name, _ in pairs}
    for name, _ in pairs:
        assert {(name, "fp32"), (name, "int8")} <= pairs


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_manifest_matches_file_and_metadata(entry):
    path = runtime.MODELS_DIR / entry["file"]
    assert runtime.sha256_file(path) == entry["sha256"]
    assert path.stat().st_size == entry["bytes"]
    model = OnnxModel(entry["name"], entry["precision"])
    meta = model.info.metadata
    assert meta["class_names"] == list(CLASS_NAMES)
    assert meta["precision"] == entry["precision"] and meta["model_name"] == entry["name"]
    assert meta["params"] == entry["params"]
    assert round(meta["test_accuracy"], 4) == entry["test_accuracy"]
    assert meta["input"]["shape"] == ["N", 28, 28, 1] and meta["preprocessing"].startswith("robust")
    assert set(meta["training_data_sha256"]) == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    probs = model.predict(np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32))
    assert probs.shape == (5, 10) and np.allclose(probs.sum(1), 1, atol=1e-4)


@pytest.fixture
def copied_models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    shutil.copytree(runtime.MODELS_DIR, folder)
    monkeypatch.setattr(runtime, "MODELS_DIR", folder)
    return folder


def test_a_corrupted_shipped_model_is_refused(copied_models):
    path = copied_models / "robust.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the manifest"):
        OnnxModel("robust", "fp32")


def test_a_missing_shipped_model_is_a_clear_error(copied_models):
    (copied_models / "robust.int8.onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        OnnxModel("robust", "int8")


def test_a_model_file_by_path_loads_without_the_manifest(copied_models, tmp_path):
    target = tmp_path / "mine.onnx"
    shutil.copy(copied_models / "model1.onnx", target)
    assert OnnxModel(str(target)).info.name == "model1"


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxModel(str(bogus))


def test_unknown_names_and_precisions(copied_models):
    with pytest.raises(ModelError, match="shipped models: model1"):
        OnnxModel("resnet")
    with pytest.raises(ModelError, match="unknown precision"):
        OnnxModel("robust", "fp16")


def test_shipped_models_match_this_preprocessing():
    assert OnnxModel("robust", "int8").info.warnings == []


def test_a_model_trained_for_other_preprocessing_is_flagged(tmp_path):
    path = with_preprocessing(runtime.MODELS_DIR / "model1.onnx", tmp_path / "old.onnx", "robust-0")
    (warning,) = OnnxModel(str(path)).info.warnings
    assert "old.onnx" in warning and "'robust-0'" in warning and runtime.PREPROCESS_VERSION in warning


def test_each_shipped_model_runs_at_its_preferred_precision_unless_told(copied_models):
    import json

    manifest_path = copied_models / "models.json"
    manifest = json.loads(manifest_path.read_text())
    assert set(manifest["preferred_precision"]) == {e["name"] for e in ENTRIES}
    manifest["preferred_precision"] = {"model1": "fp32", "robust": "int8"}
    manifest_path.write_text(json.dumps(manifest))
    assert OnnxModel("model1").info.precision == "fp32"
    assert OnnxModel("model1", "int8").info.precision == "int8"  # --precision overrides
    assert OnnxModel("robust").info.precision == "int8"
    assert OnnxModel("model2").info.precision == runtime.DEFAULT_PRECISION  # no choice recorded
    assert runtime.preferred_precision("model1", {"preferred_precision": {"model1": "fp16"}}) == "int8"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["ort_file"])
def test_every_shipped_model_has_an_ort_format_copy_that_answers_the_same(entry):
    onnx = OnnxModel(entry["name"], entry["precision"])
    path = runtime.MODELS_DIR / entry["ort_file"]
    assert runtime.sha256_file(path) == entry["ort_sha256"]
    ort_model = OnnxModel(str(path))
    assert ort_model.info.metadata == onnx.info.metadata  # still self-describing
    images = np.random.default_rng(1).random((16, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(ort_model.predict(images), onnx.predict(images), atol=1e-5)


def test_the_operator_config_covers_every_ort_file():
    config = (runtime.MODELS_DIR / "required_operators.config").read_text()
    listed = {line[4:] for line in config.splitlines() if line.startswith("# - ")}
    assert listed == {e["ort_file"] for e in ENTRIES}
    assert "/" not in "".join(listed)  # names only: the config does not carry a build machine's paths
    assert "ai.onnx;" in config and "QLinearConv" in config


def test_one_image_through_the_bound_buffers_equals_a_plain_run():
    import threading

    model = OnnxModel("model3", "fp32")
    images = np.random.default_rng(2).random((4, 28, 28), dtype=np.float32)
    plain = runtime.run_batched(model.session, images, batch_size=1)
    single = np.concatenate([model.predict(image[None]) for image in images])  # (1, 28, 28) each
    np.testing.assert_array_equal(single, plain)
    first = model.predict(images[:1])
    kept = first.copy()
    model.predict(images[1:2])
    np.testing.assert_array_equal(first, kept)  # an answer is not overwritten by the next call
    answers = {}

    def classify_from_thread(index):
        answers[index] = model.predict(images[index][None, ..., None])

    threads = [threading.Thread(target=classify_from_thread, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_array_equal(np.concatenate([answers[i] for i in range(4)]), plain)
