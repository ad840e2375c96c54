"""Export end to end on a tiny trained model: files, manifest, metadata, and every check."""

import json

import numpy as np
import pytest

pytest.importorskip("tf2onnx")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from edge_infer import CLASS_NAMES, runtime  # noqa: E402
from edge_infer.runtime import ModelError, OnnxModel  # noqa: E402
from export import onnx_export, verify  # noqa: E402
from export.macs import count_macs  # noqa: E402
from export.onnx_export import keras_to_onnx  # noqa: E402
from export.pipeline import ExportData, export_run  # noqa: E402

from .conftest import synthetic_images  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """model3 (random flips, batch-norm, dropout: all must vanish from the graph), one epoch."""
    from tests.conftest import make_dataset
    from train.fit import train_model

    root = tmp_path_factory.mktemp("export")
    data_dir = make_dataset(root / "data")
    train_model("model3", root / "runs" / "model3", epochs=1, data_dir=data_dir, cache_dir=None,
                workers=1, verbose=0, allow_download=False)
    return root


@pytest.fixture(scope="module")
def export_data():
    labels = np.random.default_rng(1).integers(0, 10, 200)
    images = synthetic_images(labels, seed=5).astype(np.float32)[..., None] / 255.0
    return ExportData(test_images=images, test_labels=labels, calibration=images[:64])


def loose():
    # one epoch on 240 images: int8 agreement is not meaningful, the other checks are
    return verify.Thresholds(int8_agreement=0.0, int8_max_drop=1.0)


def test_export_writes_verified_self_describing_files(trained_run, export_data, monkeypatch):
    out = trained_run / "models"
    reports, entries = export_run("model3", trained_run / "runs" / "model3", out, export_data, limits=loose())
    assert all(r.passed for r in reports)
    names = {c.name for r in reports for c in r.checks}
    assert {"onnx checker", "random/training ops", "interface", "rows sum to 1"} <= names
    manifest = json.loads((out / "models.json").read_text())["models"]
    assert [(e["file"], e["precision"]) for e in manifest] == [("model3.onnx", "fp32"), ("model3.int8.onnx", "int8")]
    assert (out / "cards" / "model3.md").read_text().startswith("# Model card: model3")
    monkeypatch.setattr(runtime, "MODELS_DIR", out)
    for entry in manifest:
        assert runtime.sha256_file(out / entry["file"]) == entry["sha256"]
        model = OnnxModel("model3", entry["precision"])
        assert model.info.metadata["class_names"] == list(CLASS_NAMES)
        assert model.info.metadata["quantization"] == entry["quantization"]
        probs = model.predict(export_data.test_images[:8])
        assert probs.shape == (8, 10) and np.allclose(probs.sum(1), 1, atol=1e-4)
        assert runtime.sha256_file(out / entry["ort_file"]) == entry["ort_sha256"]  # the device copy
        np.testing.assert_allclose(OnnxModel(str(out / entry["ort_file"])).predict(export_data.test_images[:8]),
                                   probs, atol=1e-5)
    assert "model3.int8.ort" in (out / "required_operators.config").read_text()
    fp32 = onnx.load(out / "model3.onnx")
    ops = {node.op_type for node in fp32.graph.node}
    assert not ops & verify.RANDOM_OPS and "Transpose" not in ops  # flatten transpose folded
    assert "Mul" not in ops  # the batch-norm after ReLU folded into the second convolution
    assert entries[0]["macs_per_image"] == count_macs(fp32) > 0
    int8 = onnx.load(out / "model3.int8.onnx")
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in int8.graph.node}
    assert entries[1]["bytes"] < entries[0]["bytes"] / 2

    # a tampered file is refused by the runtime
    data = bytearray((out / "model3.int8.onnx").read_bytes())
    data[-10] ^= 0xFF
    (out / "model3.int8.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match"):
        OnnxModel("model3", "int8")


def test_dynamic_quantization_is_recorded(trained_run, export_data):
    out = trained_run / "dynamic"
    _, entries = export_run("model3", trained_run / "runs" / "model3", out, export_data, "dynamic", loose())
    assert entries[1]["quantization"] == "dynamic"
    assert "MatMulInteger" in {n.op_type for n in onnx.load(out / "model3.int8.onnx").graph.node} or \
        "DynamicQuantizeLinear" in {n.op_type for n in onnx.load(out / "model3.int8.onnx").graph.node}


@pytest.mark.parametrize("limits", [verify.Thresholds(max_abs_diff=-1.0),
                                    verify.Thresholds(int8_agreement=1.01, int8_max_drop=1.0)])
def test_a_failing_check_fails_loudly_and_writes_nothing(trained_run, export_data, limits):
    out = trained_run / "failing"
    with pytest.raises(verify.VerificationError, match="FAIL"):
        export_run("model3", trained_run / "runs" / "model3", out, export_data, limits=limits)
    assert not out.exists() or list(out.iterdir()) == []


def test_check_only_verifies_without_writing(trained_run, export_data):
    out = trained_run / "check-only"
    reports, entries = export_run("model3", trained_run / "runs" / "model3", out, export_data, limits=loose(),
                                  write=False)
    assert all(r.passed for r in reports) and entries == [] and not out.exists()


def test_flatten_transpose_folding_keeps_the_numbers(trained_run, export_data):
    import keras

    model = keras.models.load_model(trained_run / "runs" / "model3" / "model.keras", compile=False)
    proto = keras_to_onnx(model)
    onnx_probs = verify.run(proto, export_data.test_images)
    keras_probs = model.predict(export_data.test_images, verbose=0)
    assert np.abs(onnx_probs - keras_probs).max() < 1e-5


def test_export_cli_reports_a_missing_run(tmp_path, capsys, monkeypatch):
    from export.__main__ import main

    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "none"))
    code = main(["--model", "model1", "--runs", str(tmp_path), "--data-dir", str(tmp_path)])
    assert code == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_the_first_stage_can_be_kept_float_and_the_runtime_keeps_its_pool_float(trained_run, export_data,
                                                                                  monkeypatch, tmp_path):
    from export.quantize import first_stage, quantize

    fp32 = keras_to_onnx(__import__("keras").models.load_model(trained_run / "runs" / "model3" / "model.keras",
                                                                 compile=False))
    kinds = {n.name: n.op_type for n in fp32.graph.node}
    stage = first_stage(fp32)
    assert [kinds[n] for n in stage] == ["Conv", "Relu", "MaxPool"]  # model3 opens with conv, ReLU, pool

    def float_nodes(graph):  # in QDQ form a quantized node reads its input through DequantizeLinear
        producers = {out: node.op_type for node in graph.graph.node for out in node.output}
        return [n.name for n in graph.graph.node
                if n.op_type in ("Conv", "MaxPool") and producers.get(n.input[0]) != "DequantizeLinear"]

    plain, kept = quantize(fp32, export_data.calibration), quantize(fp32, export_data.calibration,
                                                                   first_stage_kept=True)
    assert float_nodes(plain) == [] and float_nodes(kept) == [n for n in stage if kinds[n] != "Relu"]
    meta = {p.key: p.value for p in kept.metadata_props}
    assert json.loads(meta[runtime.DISABLED_OPTIMIZERS_KEY]) == ["QDQPropagationTransformer"]
    assert runtime.DISABLED_OPTIMIZERS_KEY not in {p.key for p in plain.metadata_props}

    # the runtime makes its session without QDQ propagation, so the pool stays float (not uint8 NCHW)
    calls = []

    class Recording(ort.InferenceSession):
        def __init__(self, *args, **kwargs):
            calls.append(kwargs)
            super().__init__(*args, **kwargs)

    def saving_options(threads=None):  # every session the runtime makes saves the graph it runs
        options = real_options(threads)
        options.optimized_model_filepath = str(tmp_path / "runtime_optimized.onnx")
        return options

    def pool_input(path):
        graph = onnx.load(path).graph
        producers = {out: node.op_type for node in graph.node for out in node.output}
        return producers.get(next(n for n in graph.node if "MaxPool" in n.op_type).input[0])

    real_options = runtime.session_options
    monkeypatch.setattr(runtime.ort, "InferenceSession", Recording)
    monkeypatch.setattr(runtime, "session_options", saving_options)
    (tmp_path / "kept.onnx").write_bytes(kept.SerializeToString())
    (tmp_path / "plain.onnx").write_bytes(plain.SerializeToString())
    probabilities = OnnxModel(str(tmp_path / "kept.onnx")).predict_batched(export_data.test_images)
    assert calls[-1]["disabled_optimizers"] == ["QDQPropagationTransformer"]
    assert pool_input(tmp_path / "runtime_optimized.onnx") != "QuantizeLinear"  # the pool reads float
    calls.clear()
    OnnxModel(str(tmp_path / "plain.onnx"))
    assert len(calls) == 1 and "disabled_optimizers" not in calls[0]
    monkeypatch.undo()
    assert (probabilities.argmax(1) == verify.run(fp32, export_data.test_images).argmax(1)).mean() > 0.95
    # the premise: left on, QDQ propagation puts the QuantizeLinear in front of the pool
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "propagated.onnx")
    ort.InferenceSession(str(tmp_path / "kept.onnx"), options, providers=["CPUExecutionProvider"])
    assert pool_input(tmp_path / "propagated.onnx") == "QuantizeLinear"

    # the .ort copy is made with the same optimisers left out (its answers cannot show it: max
    # commutes with quantization, so only the graph tells)
    from export import ort_format

    calls.clear()
    monkeypatch.setattr(ort_format.ort, "InferenceSession", Recording)
    ort_format.convert(tmp_path / "kept.onnx", export_data.test_images[:16])
    assert any({"QDQPropagationTransformer", "NchwcTransformer"} <= set(c.get("disabled_optimizers", ()))
               for c in calls)
    monkeypatch.undo()

    # malformed metadata: one line naming the file and the key, not onnxruntime's complaint
    onnx_export.set_metadata(plain, {runtime.DISABLED_OPTIMIZERS_KEY: "QDQPropagationTransformer"})
    (tmp_path / "bad.onnx").write_bytes(plain.SerializeToString())
    with pytest.raises(ModelError, match=r"bad\.onnx: metadata 'disabled_optimizers' must be a JSON list"):
        OnnxModel(str(tmp_path / "bad.onnx"))


def test_a_separable_robust_variant_exports_with_depthwise_convolutions(export_data, tmp_path):
    """The efficiency frontier's cheap variant: batch-norms folded, depthwise Conv (group = channels),
    multiply-accumulates counted per depthwise and pointwise step, and the same answers as Keras."""
    from export.quantize import quantize
    from train.models import build_robust

    widths = (8, 16, 24)
    model = build_robust(widths, block="separable")
    rng = np.random.default_rng(3)
    for layer in model.layers:  # trained-looking statistics, so a wrong fold (axis, order) shows
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2.0, variance.shape)])
    proto = keras_to_onnx(model)
    assert "BatchNormalization" not in [n.op_type for n in proto.graph.node]
    groups = sorted(a.i for n in proto.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group")
    assert [g for g in groups if g > 1] == [8, 8, 16, 16, 24]  # every block but the first is depthwise
    spatial = (28 * 28, 28 * 28, 14 * 14, 14 * 14, 7 * 7, 7 * 7)
    channels_in = (1, 8, 8, 16, 16, 24)
    channels_out = (8, 8, 16, 16, 24, 24)
    first = spatial[0] * 9 * channels_out[0]
    separable = sum(s * (9 * c_in + c_in * c_out)
                    for s, c_in, c_out in zip(spatial[1:], channels_in[1:], channels_out[1:]))
    assert count_macs(proto) == first + separable + 24 * 10
    images = export_data.test_images[:32]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    ours = session.run(None, {session.get_inputs()[0].name: images})[0]
    np.testing.assert_allclose(ours, model(images, training=False).numpy(), atol=1e-5, rtol=1e-4)
    # tf2onnx leaves a depthwise convolution's batch-norm as Mul and Add; onnxruntime folds them
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    assert not {"Mul", "Add"} & {n.op_type for n in onnx.load(tmp_path / "optimized.onnx").graph.node}
    quantized = quantize(proto, export_data.calibration)
    session = ort.InferenceSession(quantized.SerializeToString(),
                                                         providers=["CPUExecutionProvider"])
    assert session.run(None, {session.get_inputs()[0].name: images})[0].shape == (32, 10)


def test_the_card_names_the_classes_corruption_mixing_was_limited_to():
    from export.card import model_card

    run = {"recipe": {"augment": "photo", "corruption_mix": 0.3, "corruption_mix_classes": [0, 3]}}
    card = model_card("robust", "ours", run, [], 1, "conv")
    assert "AugMix-style corruption mixtures" in card and "of the classes T-shirt/top, Dress" in card
    assert "of the classes" not in model_card("robust", "ours", {"recipe": {"corruption_mix": 0.3}}, [], 1, "conv")


def test_the_card_of_a_distilled_model_names_its_teachers():
    from export.card import model_card

    teachers = [{"file": "/runs/v7/robust/model.keras", "sha256": "ab" * 32},
                {"file": "/runs/v11/robust/model.keras", "sha256": "cd" * 32}]
    card = model_card("robust", "ours", {"recipe": {"teacher_weight": 0.7}, "teachers": teachers}, [], 1, "conv")
    assert "- distilled: 70% of every target (before label smoothing) is the mean answer of 2 trained models" in card
    assert "`/runs/v11/robust/model.keras` (sha256 cdcdcdcdcdcd)" in card
    assert "distilled" not in model_card("robust", "ours", {"recipe": {}}, [], 1, "conv")


def test_the_card_says_how_many_shoes_were_shown_as_pairs():
    from export.card import model_card

    card = model_card("robust", "ours", {"recipe": {"augment": "photo", "footwear_pairs": 0.5}}, [], 1, "conv")
    assert "50% of the shoes' photo round trips showing a pair" in card
    assert "pair" not in model_card("robust", "ours", {"recipe": {"augment": "photo"}}, [], 1, "conv")
    no_round_trip = {"recipe": {"augment": "basic", "footwear_pairs": 0.5}}  # nothing was rendered as a pair
    assert "pair" not in model_card("robust", "ours", no_round_trip, [], 1, "conv")
