"""python -m export.e2e [--model robust] [--precision P] [--models-dir D] [--check-only] [--folder F ...]

One model file for every runtime: the robust preprocessing compiled into ONNX
(export.e2e_graph) in front of a shipped classifier, written as `<name>.e2e.onnx` beside it.
Input `rgba` (H, W, 4) uint8, a decoded picture with EXIF orientation applied; outputs
`probabilities` (1, 10) and `preprocessed` (1, 28, 28, 1), what the classifier saw.

Nothing is written unless the graph agrees with the Python runtime (`edge-infer classify`):
top-1 on at least 99.5 % of the images of unseen/, unseen/shifted/, generated scenes and any
--folder given, and each image's preprocessed 28x28 within 1/255 on average.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from PIL import Image, ImageDraw

from edge_infer import preprocess
from edge_infer.classes import IMAGE_SIZE
from edge_infer.files import DRAFT_SIZE, ImageError, collect, open_image, write_atomic

from .e2e_graph import OPSET, preprocessing
from .onnx_graph import FLOAT, UINT8, Graph, value_info

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_DIR = ROOT / "edge_infer" / "models"
INPUT, PROBABILITIES, PREPROCESSED = "rgba", "probabilities", "preprocessed"
MIN_AGREEMENT = 0.995
MAX_MEAN_DIFF = 1.0 / 255.0  # per image, mean |graph - Python| over the 28x28
DRAFT_NOTE = f"{DRAFT_SIZE} px on the short side when the JPEG is twice that or more"


class ParityError(Exception):
    pass


def e2e_filename(name: str) -> str:
    return f"{name}.e2e.onnx"


def build(classifier: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """The preprocessing graph feeding `classifier` (input `image`, output `probabilities`)."""
    g = Graph(prefix="pre/")
    g.rename(preprocessing(g, INPUT), PREPROCESSED)
    model = onnx.compose.add_prefix(classifier, "classifier/")
    (model_input,), (model_output,) = model.graph.input, model.graph.output
    nodes = [*g.nodes, helper.make_node("Identity", [PREPROCESSED], [model_input.name]),
             *model.graph.node, helper.make_node("Identity", [model_output.name], [PROBABILITIES])]
    graph = helper.make_graph(
        nodes, f"{name}_end_to_end",
        [value_info(INPUT, UINT8, ["H", "W", 4])],
        [value_info(PROBABILITIES, FLOAT, [1, 10]), value_info(PREPROCESSED, FLOAT, [1, IMAGE_SIZE, IMAGE_SIZE, 1])],
        initializer=list(model.graph.initializer),
    )
    domains = {node.domain for node in graph.node}
    opsets = [o for o in classifier.opset_import if o.domain in domains or o.domain in ("", "ai.onnx")]
    if not any(o.domain in ("", "ai.onnx") and o.version == OPSET for o in opsets):
        raise ValueError(f"the classifier uses opset {[o.version for o in opsets]}, the preprocessing {OPSET}")
    e2e = helper.make_model(graph, opset_imports=opsets, producer_name="edge-infer export.e2e")
    e2e.ir_version = classifier.ir_version
    metadata = {p.key: p.value for p in classifier.metadata_props}
    metadata.update({
        "input": json.dumps({"name": INPUT, "shape": ["H", "W", 4], "layout": "HWC", "dtype": "uint8",
                             "meaning": "a decoded picture as RGBA, EXIF orientation applied, alpha 255 where "
                                        "opaque; decoding stays with the caller"}),
        "output": json.dumps({"name": PROBABILITIES, "shape": [1, 10], "meaning": "class probabilities"}),
        "preprocessed_output": json.dumps({"name": PREPROCESSED, "shape": [1, IMAGE_SIZE, IMAGE_SIZE, 1],
                                           "meaning": "the 28x28 the classifier saw, in [0, 1]"}),
        "preprocessing_in_graph": metadata["preprocessing"],  # already JSON, as every value here
        "opset": str(OPSET),
    })
    helper.set_model_props(e2e, metadata)
    onnx.checker.check_model(e2e, full_check=True)
    return e2e


@dataclass
class Parity:
    images: int = 0
    agreeing: int = 0
    max_abs_diff: float = 0.0
    worst_mean_abs_diff: float = 0.0
    disagreements: list[str] = field(default_factory=list)
    by_set: dict = field(default_factory=dict)

    @property
    def agreement(self) -> float:
        return self.agreeing / max(1, self.images)

    def passed(self) -> bool:
        return self.agreement >= MIN_AGREEMENT and self.worst_mean_abs_diff <= MAX_MEAN_DIFF

    def summary(self) -> dict:
        return {**asdict(self), "agreement": round(self.agreement, 4),
                "max_abs_diff": round(self.max_abs_diff, 4), "worst_mean_abs_diff": round(self.worst_mean_abs_diff, 5)}


def check_parity(e2e_session, classifier, sets: dict[str, list[tuple[str, Image.Image]]]) -> Parity:
    """Top-1 and the preprocessed 28x28 of the graph against robust() + the classifier."""
    result = Parity()
    for set_name, images in sets.items():
        agreeing = 0
        for name, image in images:
            expected = preprocess.robust(image)
            expected_label = int(np.argmax(classifier.predict(expected[None, :, :, None])[0]))
            probabilities, seen = e2e_session.run([PROBABILITIES, PREPROCESSED], {INPUT: preprocess.rgba_bytes(image)})
            diff = np.abs(seen[0, :, :, 0] - expected)
            result.max_abs_diff = max(result.max_abs_diff, float(diff.max()))
            result.worst_mean_abs_diff = max(result.worst_mean_abs_diff, float(diff.mean()))
            if int(np.argmax(probabilities[0])) == expected_label:
                agreeing += 1
            else:
                result.disagreements.append(Path(name).name)  # no local paths in models.json
        result.images += len(images)
        result.agreeing += agreeing
        result.by_set[set_name] = {"images": len(images), "agreeing": agreeing}
    return result


def folder_images(folder: str | Path, recursive: bool = False) -> list[tuple[str, Image.Image]]:
    """The image files of a folder (and, if asked, its subfolders), decoded as `classify` decodes them."""
    images = []
    for item in collect([str(folder)], recursive=recursive).files:
        try:
            images.append((str(item.path), open_image(item.path)))
        except ImageError:  # an unreadable file is classify's business, not the graph's
            continue
    return images


def parity_scenes(seed: int = 0) -> list[tuple[str, Image.Image]]:
    """Generated pictures at the edges of what a caller may pass: 1x1 to 4000x3000, extreme
    aspect ratios, transparency, light and dark backgrounds, textured floors, grey 28x28."""
    rng = np.random.default_rng(seed)
    scenes = []

    def garment(size, background, colour, box, mode="RGB"):
        image = Image.new(mode, size, background)
        draw = ImageDraw.Draw(image)
        left, top, right, bottom = box
        width = right - left
        draw.rectangle((left + width // 4, top, right - width // 4, bottom), fill=colour)  # body
        draw.polygon([(left, top + (bottom - top) // 5), (left + width // 4, top),
                      (left + width // 4, top + (bottom - top) // 2)], fill=colour)  # sleeves
        draw.polygon([(right, top + (bottom - top) // 5), (right - width // 4, top),
                      (right - width // 4, top + (bottom - top) // 2)], fill=colour)
        return image

    def floor(width, height):
        grain = rng.normal(0, 18, (height, 1, 1)) + rng.normal(0, 6, (height, width, 1))
        wood = np.clip(np.array([150, 105, 60]) + grain, 0, 255).astype(np.uint8)
        return Image.fromarray(wood, "RGB")

    scenes.append(("1x1 white", Image.new("RGB", (1, 1), (255, 255, 255))))
    scenes.append(("1x1 black", Image.new("L", (1, 1), 0)))
    scenes.append(("2x3 noise", Image.fromarray(rng.integers(0, 256, (3, 2, 3), dtype=np.uint8), "RGB")))
    scenes.append(("900x3 strip", garment((900, 3), "white", "navy", (100, 0, 800, 3))))
    scenes.append(("3x900 strip", garment((3, 900), "white", "maroon", (0, 100, 3, 800))))
    scenes.append(("4000x3000 packshot", garment((4000, 3000), "white", (40, 40, 60), (900, 400, 3100, 2700))))
    scenes.append(("3000x4000 packshot", garment((3000, 4000), (245, 245, 240), (180, 30, 30), (300, 800, 2700, 3600))))
    scenes.append(("light on dark", garment((500, 400), (15, 15, 15), (230, 230, 230), (60, 40, 440, 360))))
    scenes.append(("grey on grey", garment((320, 240), (128, 128, 128), (90, 90, 90), (40, 30, 280, 210))))
    cut_out = garment((600, 500), (0, 0, 0, 0), (20, 90, 40, 255), (100, 60, 500, 440), mode="RGBA")
    scenes.append(("transparent background", cut_out))
    scenes.append(("half transparent", Image.fromarray(np.dstack([np.asarray(cut_out)[..., :3],
                                                                    np.asarray(cut_out)[..., 3] // 2]), "RGBA")))
    scenes.append(("all transparent", Image.new("RGBA", (64, 48), (255, 0, 0, 0))))
    noise = rng.integers(0, 256, (300, 400, 4), dtype=np.uint8)
    noise[..., 3] = 200  # translucent everywhere: Pillow shrinks it in premultiplied alpha
    scenes.append(("translucent noise", Image.fromarray(noise, "RGBA")))
    ramp = np.asarray(cut_out).copy()
    ramp[..., 3] = np.minimum(ramp[..., 3], np.linspace(0, 255, ramp.shape[1]).astype(np.uint8))
    scenes.append(("alpha ramp", Image.fromarray(ramp, "RGBA")))
    scenes.append(("tall packshot", garment((90, 260), "white", (30, 30, 90), (10, 20, 80, 240))))
    scenes.append(("grey with alpha", garment((200, 300), (0, 0), (200, 255), (20, 40, 180, 260), mode="LA")))
    for index, box in enumerate([(60, 50, 340, 350), (-30, 40, 330, 380), (-50, -40, 350, 440)]):
        photo = floor(300, 400)
        photo.paste(garment((300, 400), "black", (225, 225, 230), box), mask=garment((300, 400), 0, 255, box, "L"))
        scenes.append((f"phone photo {index}", photo))
    blob = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    blob[5:23, 8:20] = rng.integers(120, 255, (18, 12))
    scenes.append(("fashion-mnist form (L)", Image.fromarray(blob, "L")))
    scenes.append(("fashion-mnist form (grey RGB)", Image.fromarray(np.dstack([blob] * 3), "RGB")))
    scenes.append(("28x28 colour", Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8), "RGB")))
    return scenes


def default_sets(extra_folders=()) -> dict[str, list[tuple[str, Image.Image]]]:
    sets = {"unseen": folder_images(ROOT / "unseen"), "unseen/shifted": folder_images(ROOT / "unseen" / "shifted"),
            "scenes": parity_scenes()}
    for folder in extra_folders:
        sets[str(folder)] = folder_images(folder, recursive=True)  # class subfolders, as evaluate reads them
    return sets


def export_e2e(name: str, precision: str | None, models_dir: Path, extra_folders=(), write: bool = True):
    """Build, check and (if it passes) write `<name>.e2e.onnx` and its models.json record."""
    from edge_infer.runtime import OnnxModel, create_session, preferred_precision

    precision = precision or preferred_precision(name)
    classifier = OnnxModel(name, precision)
    e2e = build(onnx.load(str(classifier.info.path)), name)
    data = e2e.SerializeToString()
    session = create_session(data, threads=1)
    parity = check_parity(session, classifier, default_sets(extra_folders))
    if not parity.passed():
        raise ParityError(f"{name}: graph and Python disagree: top-1 {parity.agreement:.2%} (need "
                          f"{MIN_AGREEMENT:.1%}), worst mean |diff| {parity.worst_mean_abs_diff:.4f} (need <= "
                          f"{MAX_MEAN_DIFF:.4f}); disagreeing: {', '.join(parity.disagreements[:5])}")
    record = {
        "name": name, "precision": precision, "file": e2e_filename(name),
        "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "opset": OPSET,
        "preprocessing": preprocess.PREPROCESS_VERSION, "classifier_sha256": classifier.info.manifest["sha256"]
        if classifier.info.manifest else None,
        # only the repository's own sets: what a rerun anywhere reproduces
        "parity": {k: v for k, v in parity.summary().items() if k != "by_set"} if not extra_folders
        else None,
    }
    if write:
        from .pipeline import update_manifest

        write_atomic(models_dir / record["file"], data)
        update_manifest(models_dir / "models.json", [record], section="end_to_end", key=("name",))
        names = json.loads(dict((p.key, p.value) for p in e2e.metadata_props)["class_names"])
        (models_dir / "cards").mkdir(exist_ok=True)
        write_atomic(models_dir / "cards" / f"{name}.e2e.md", card(record, names))
    return record, parity


def card(record: dict, class_names: list[str]) -> str:
    """The end-to-end file's model card: what goes in and out, what the caller does, how to call it."""
    parity = record["parity"] or {}
    file = record["file"]
    return f"""# Model card: {file}

The `{record['name']}` classifier ({record['precision']}, card `{record['name']}.md`) with its whole
preprocessing (`{record['preprocessing']}`, `edge_infer/preprocess.py`) compiled into one ONNX graph:
standard operators only, opset {record['opset']}. Generated by `python -m export.e2e`; do not edit by hand.

## Interface
- input `{INPUT}`: uint8 (H, W, 4), any H and W: a decoded picture as RGBA, EXIF orientation
  applied, alpha 255 where it is opaque (an opaque picture may be passed with alpha 255 everywhere)
- output `{PROBABILITIES}`: float32 (1, 10), classes in order: {', '.join(class_names)}
- output `{PREPROCESSED}`: float32 (1, 28, 28, 1), the picture the classifier saw, in [0, 1]

What stays with the caller: decoding the file (every platform has a decoder), applying the EXIF
orientation, and, for big JPEGs, decoding at a reduced size (edge-infer asks libjpeg for at least
{DRAFT_NOTE}); no colour management (edge-infer applies none). Everything after decoding is in the graph.

## Agreement with `edge-infer classify`
Checked by `python -m export.e2e` before writing this file, on unseen/, unseen/shifted/ and
generated scenes (1x1 to 4000x3000, transparency, extreme aspect ratios): top-1 the same on
{parity.get('agreeing', '?')} of {parity.get('images', '?')} images; the 28x28 differs by at most
{parity.get('max_abs_diff', '?')} (worst per-image mean {parity.get('worst_mean_abs_diff', '?')}).

## Calling it
Python (onnxruntime, Pillow):
```python
import numpy as np, onnxruntime as ort
from PIL import Image, ImageOps
session = ort.InferenceSession("{file}")
image = Image.open("photo.jpg")
if image.format == "JPEG" and min(image.size) >= {2 * DRAFT_SIZE}:
    image.draft("RGB", ({DRAFT_SIZE}, {DRAFT_SIZE}))  # decode big JPEGs at the size edge-infer does
# (16-bit PNGs: scale to 8 bits first, as edge_infer.preprocess.normalise_mode does)
rgba = np.asarray(ImageOps.exif_transpose(image).convert("RGBA"))
probabilities, seen = session.run(None, {{"{INPUT}": rgba}})
```

JavaScript (onnxruntime-web, in a browser; see `edge_infer/web/app.js`):
```js
const session = await ort.InferenceSession.create("{file}");
const bitmap = await createImageBitmap(file, {{ imageOrientation: "from-image", premultiplyAlpha: "none", colorSpaceConversion: "none" }});
const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
const context = canvas.getContext("2d");
context.drawImage(bitmap, 0, 0);
const rgba = new Uint8Array(context.getImageData(0, 0, bitmap.width, bitmap.height).data.buffer);
const {{ {PROBABILITIES} }} = await session.run({{ {INPUT}: new ort.Tensor("uint8", rgba, [bitmap.height, bitmap.width, 4]) }});
```

C++ (onnxruntime C++ API; `rgba` points at height * width * 4 decoded bytes):
```cpp
Ort::Env env;
Ort::Session session(env, "{file}", Ort::SessionOptions{{}});
std::array<int64_t, 3> shape{{height, width, 4}};
auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
Ort::Value input = Ort::Value::CreateTensor<uint8_t>(memory, rgba, height * width * 4, shape.data(), shape.size());
const char* inputs[] = {{"{INPUT}"}};
const char* outputs[] = {{"{PROBABILITIES}", "{PREPROCESSED}"}};
auto results = session.Run(Ort::RunOptions{{nullptr}}, inputs, &input, 1, outputs, 2);
const float* probabilities = results[0].GetTensorData<float>();  // 10 values
```
"""


def main(argv=None) -> int:
    from train.registry import DEFAULT_MODEL, NAMES

    parser = argparse.ArgumentParser(prog="python -m export.e2e", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=NAMES)
    parser.add_argument("--precision", choices=["fp32", "int8"], help="default: the model's preferred precision")
    parser.add_argument("--models-dir", default=str(DEFAULT_MODELS_DIR),
                        help="where the file and its models.json record go (the classifier is the shipped one)")
    parser.add_argument("--folder", action="append", default=[],
                        help="another labelled or unlabelled image folder to check parity on (repeatable)")
    parser.add_argument("--check-only", action="store_true", help="build and check, write nothing")
    args = parser.parse_args(argv)
    from edge_infer.runtime import ModelError

    models_dir = Path(args.models_dir)
    if not (models_dir / "models.json").is_file():
        print(f"error: {models_dir / 'models.json'} not found: the end-to-end file is recorded beside the "
              "shipped models", file=sys.stderr)
        return 2
    try:
        record, parity = export_e2e(args.model, args.precision, models_dir, args.folder, write=not args.check_only)
    except ParityError as exc:
        print(f"error: {exc}; nothing written", file=sys.stderr)
        return 1
    except (ModelError, ValueError) as exc:  # no such shipped model; an opset the graph cannot join
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for set_name, counts in parity.by_set.items():
        print(f"  {set_name}: top-1 agrees on {counts['agreeing']}/{counts['images']}")
    print(f"  all: {parity.agreement:.2%} agree; preprocessed max |diff| {parity.max_abs_diff:.4f}, "
          f"worst per-image mean {parity.worst_mean_abs_diff:.5f}")
    if not args.check_only:
        print(f"  wrote {record['file']}: {record['bytes']:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
