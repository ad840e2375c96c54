"""The robust preprocessing compiled into ONNX (export.e2e_graph) and the end-to-end model file."""

import hashlib
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image, ImageFilter

from edge_infer import segment
from edge_infer.classifier import Classifier
from edge_infer.preprocess import rgba_bytes, robust
from edge_infer.runtime import MODELS_DIR
from export import e2e, e2e_graph, e2e_segment
from export.onnx_graph import FLOAT, Graph, item, value_info
from onnx import helper


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _function_session(build, outputs: int = 1) -> ort.InferenceSession:
    """A graph of one float input `image` around `build(g, name)`, returning `outputs` float values."""
    g = Graph()
    values = build(g, "image")
    names = [g.rename(value, f"out{i}") for i, value in enumerate(values if outputs > 1 else [values])]
    graph = g.to_graph("piece", [value_info("image", FLOAT, None)], [value_info(n, FLOAT, None) for n in names])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", e2e_graph.OPSET)])
    model.ir_version = 8
    return _session(model)


def _chw(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32).reshape(image.height, image.width, -1).transpose(2, 0, 1).copy()


@pytest.fixture(scope="module")
def preprocessing_session():
    return _session(e2e_graph.build_preprocessing())


@pytest.fixture(scope="module")
def repository_images():
    return [image for images in e2e.default_sets().values() for _, image in images]


def test_the_graph_preprocesses_like_python(preprocessing_session, repository_images):
    exact = 0
    for image in repository_images:
        expected = robust(image)
        seen = preprocessing_session.run(None, {"rgba": rgba_bytes(image)})[0][0, :, :, 0]
        diff = np.abs(seen - expected)
        assert diff.max() <= 2 / 255
        exact += bool(np.array_equal(seen, expected))
    # all of them agree to the last bit here; a CPU whose sine differs in the last place may
    # move a Lanczos weight by one step of 2^-22 and a pixel by one grey level
    assert exact >= 0.98 * len(repository_images)


@pytest.mark.parametrize("size,target,kind,gap", [
    ((400, 300), (128, 96), "box", 2.0), ((1333, 97), (128, 9), "box", 2.0), ((50, 40), (50, 40), "box", 2.0),
    ((300, 170), (28, 16), "lanczos", 3.0), ((19, 7), (28, 10), "lanczos", 3.0), ((12, 9), (333, 250), "bilinear", None),
    # shapes Pillow resamples vertically first
    ((37, 94), (11, 28), "lanczos", 3.0), ((100, 1000), (13, 128), "box", 2.0), ((60, 128), (22, 48), "box", 2.0),
    ((88, 115), (96, 50), "bilinear", None),
])
def test_resampling_is_pillows_to_the_bit(size, target, kind, gap):
    rng = np.random.default_rng(sum(size))
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    filters = {"box": (e2e_graph.BOX, Image.Resampling.BOX), "lanczos": (e2e_graph.LANCZOS, Image.Resampling.LANCZOS),
               "bilinear": (e2e_graph.BILINEAR, Image.Resampling.BILINEAR)}
    ours, pillows = filters[kind]

    def build(g, name):
        return e2e_graph.resample(g, name, g.const(target[1], onnx.TensorProto.INT64),
                                  g.const(target[0], onnx.TensorProto.INT64), ours, gap)

    out = _function_session(build).run(None, {"image": _chw(image)})[0]
    expected = image.resize(target, pillows, reducing_gap=gap)
    assert np.array_equal(out, _chw(expected))


def test_thumbnail_sizes_are_pillows():
    for size in [(1, 1), (128, 128), (129, 128), (4000, 3000), (3, 900), (900, 3), (257, 1000), (48, 49)]:
        g = Graph()
        h, w = e2e_graph._thumbnail_size(g, g.const(size[1], onnx.TensorProto.INT64),
                                         g.const(size[0], onnx.TensorProto.INT64), 128)
        g.rename(g.op("Concat", w, h, axis=0), "size")
        graph = g.to_graph("t", [], [value_info("size", onnx.TensorProto.INT64, [2])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", e2e_graph.OPSET)])
        model.ir_version = 8
        image = Image.new("L", size)
        image.thumbnail((128, 128))
        assert tuple(_session(model).run(None, {})[0]) == image.size, size


def test_blur_and_unsharp_mask_are_pillows_to_the_bit():
    rng = np.random.default_rng(5)
    image = Image.fromarray(rng.integers(0, 256, (23, 31), dtype=np.uint8), "L")
    blur = _function_session(lambda g, name: e2e_graph.gaussian_blur(g, name, 1.0))
    assert np.array_equal(blur.run(None, {"image": _chw(image)})[0], _chw(image.filter(ImageFilter.GaussianBlur(1))))
    sharpen = _function_session(lambda g, name: e2e_graph._unsharp_mask(g, name, 1.0, 60, 2))
    expected = image.filter(ImageFilter.UnsharpMask(radius=1, percent=60, threshold=2))
    assert np.array_equal(sharpen.run(None, {"image": _chw(image)})[0], _chw(expected))


def test_the_garment_mask_is_the_segmenters():
    from .scenes import garment_on_floor

    def build(g, name):
        shape = g.op("Shape", name)
        found, mask = e2e_segment.garment_mask(g, name, item(g, shape, 1), item(g, shape, 2))
        return g.cast(found, FLOAT), g.cast(mask, FLOAT)

    session = _function_session(build, outputs=2)
    # odd sizes too: the half-size grid drops a last row or column, as NumPy's 2x2 means do
    for box, size in [((40, 60, 260, 340), (300, 400)), ((-40, -30, 340, 430), (300, 400)),
                      ((-20, 40, 320, 380), (301, 397))]:
        small = garment_on_floor(*size, box=box)
        small.thumbnail((segment.SEGMENT_SIZE, segment.SEGMENT_SIZE), Image.Resampling.BOX)
        pixels = np.asarray(small.filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)
        assert pixels.shape[0] % 2 or pixels.shape[1] % 2 or size == (300, 400)
        found, out = session.run(None, {"image": pixels.transpose(2, 0, 1).copy()})
        expected = segment.garment_mask(pixels)
        assert expected is not None and bool(found[0])
        assert np.array_equal(out > 0.5, expected)
    # a grid too small to fit: both give up
    tiny = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.float32)
    assert segment.garment_mask(tiny) is None
    assert not session.run(None, {"image": tiny.transpose(2, 0, 1).copy()})[0][0]


def test_the_shipped_e2e_file_is_recorded_and_answers_like_classify():
    manifest = json.loads((MODELS_DIR / "models.json").read_text())
    (record,) = [entry for entry in manifest["end_to_end"] if entry["name"] == "robust"]
    data = (MODELS_DIR / record["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == record["sha256"]
    model = onnx.load_from_string(data)
    metadata = {p.key: p.value for p in model.metadata_props}
    assert json.loads(metadata["preprocessing_in_graph"]) == record["preprocessing"]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    classifier = Classifier("robust", record["precision"])
    images = e2e.folder_images(e2e.ROOT / "unseen")
    python = {record.path: record for record in classifier.classify([name for name, _ in images]).records}
    assert len(python) == len(images) == 47
    for name, image in images:
        probabilities, seen = session.run(None, {"rgba": rgba_bytes(image)})
        assert int(np.argmax(probabilities)) == python[name].best_class_index, name
        assert seen.shape == (1, 28, 28, 1)


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attribute.g)


def test_the_e2e_model_uses_standard_operators_only():
    model = onnx.load(str(MODELS_DIR / "robust.e2e.onnx"))
    assert {node.domain for node in _all_nodes(model.graph)} <= {"", "ai.onnx"}
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [e2e_graph.OPSET]


def test_export_writes_nothing_when_the_graph_disagrees(tmp_path, monkeypatch):
    for name in ("models.json", "robust.int8.onnx", "robust.onnx"):
        shutil.copy(MODELS_DIR / name, tmp_path / name)
    before = (tmp_path / "models.json").read_bytes()
    # a preprocessing that forgets to invert: light-background pictures come out wrong
    real = e2e_graph.preprocessing
    monkeypatch.setattr(e2e, "preprocessing", lambda g, rgba: g.sub(g.const(1.0), real(g, rgba)))
    monkeypatch.setattr("edge_infer.runtime.MODELS_DIR", tmp_path)
    monkeypatch.setattr(e2e, "default_sets", lambda extra=(): {"unseen": e2e.folder_images(e2e.ROOT / "unseen")})
    with pytest.raises(e2e.ParityError, match="disagree"):
        e2e.export_e2e("robust", "int8", tmp_path)
    assert not (tmp_path / "robust.e2e.onnx").exists()
    assert (tmp_path / "models.json").read_bytes() == before


def test_loading_the_e2e_model_prints_nothing():
    # onnxruntime warns on stderr when its optimiser trips over a value a subgraph uses; a user
    # loading the file in their own program should not see that
    import subprocess
    import sys

    code = ("import onnxruntime as ort; "
            f"ort.InferenceSession({str(MODELS_DIR / 'robust.e2e.onnx')!r}, providers=['CPUExecutionProvider'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-500:]
