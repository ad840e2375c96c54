"""The runtimes a user would otherwise pick, side by side in one process (needs the train extra).

For each trained model: the study's way (Keras `model.predict` on one image at a time), Keras
`predict` on batches, a direct Keras call, TFLite fp32 and int8 (converter with a
representative dataset), and onnxruntime fp32 and int8 (the shipped files). All on one
thread, so the numbers compare kernels rather than thread pools.

    python benchmarks/peers.py [--runs runs] [--models model1 model2 model3 robust]

The first rows are each runtime's floor: an Identity model (image in, image out) through the
same call path, so the table shows which part of a small model's time is the call itself.

Writes benchmarks/results/peers.json, peers.md and peers.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge_infer import datasets  # noqa: E402
from edge_infer.evaluation import metrics  # noqa: E402
from edge_infer.evaluation.benchmark import machine, percentiles, throughput, time_calls  # noqa: E402
from edge_infer.runtime import OnnxModel, load_manifest  # noqa: E402
from train.registry import NAMES  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def tflite_models(model, representative: np.ndarray) -> dict[str, bytes]:
    """TFLite fp32 and int8 (int8 weights, activations calibrated on `representative`).

    The inference function (training=False, so flips and dropout are inert) is frozen first:
    with live resource variables the int8 calibrator fails (READ_VARIABLE), and Keras'
    `model.export` traced the study's model3 with its random flips and batch-norm updates."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    def serve(image):
        return model(image, training=False)

    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    fp32 = tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([representative[i : i + 1]] for i in range(len(representative)))
    return {"fp32": fp32, "int8": converter.convert()}


class TfliteRunner:
    def __init__(self, content: bytes):
        import tensorflow as tf

        self.interpreter = tf.lite.Interpreter(model_content=content, num_threads=1)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.batch = None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.batch != len(images):
            self.interpreter.resize_tensor_input(self.input, list(images.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(images)
        self.interpreter.set_tensor(self.input, images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)


def bench_model(name: str, run_dir: Path, test: np.ndarray, labels: np.ndarray, calibration: np.ndarray,
                predict_runs: int, fast_runs: int) -> list[dict]:
    import keras

    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    one = test[:1]
    batch = test[:256]
    rows = []

    def row(runtime: str, precision: str, latency_s: list[float], per_sec: float, accuracy: float | None,
            size: int | None = None):
        rows.append({"model": name, "runtime": runtime, "precision": precision, "latency_us": percentiles(latency_s),
                     "throughput_b256": per_sec, "test_accuracy": accuracy, "bytes": size})

    row("keras predict (study)", "fp32", time_calls(lambda: model.predict(one, verbose=0), predict_runs),
        throughput(lambda: model.predict(batch, batch_size=256, verbose=0), 256), None)
    row("keras direct call", "fp32", time_calls(lambda: model(one, training=False), fast_runs // 10),
        throughput(lambda: model(batch, training=False), 256), None)
    for precision, content in tflite_models(model, calibration).items():
        runner = TfliteRunner(content)
        accuracy = metrics.accuracy(np.concatenate([runner(test[i : i + 500]) for i in range(0, len(test), 500)]),
                                    labels)
        single = TfliteRunner(content)
        many = TfliteRunner(content)
        row("tflite", precision, time_calls(lambda: single(one), fast_runs), throughput(lambda: many(batch), 256),
            accuracy, len(content))
    for precision in ("fp32", "int8"):
        onnx_model = OnnxModel(name, precision, threads=1)
        accuracy = metrics.accuracy(onnx_model.predict_batched(test, 500), labels)
        row("onnxruntime", precision, time_calls(lambda: onnx_model.predict(one), fast_runs),
            throughput(lambda: onnx_model.predict(batch), 256), accuracy, onnx_model.info.path.stat().st_size)
    return rows


def identity_onnx() -> bytes:
    """A graph that returns its input: onnxruntime's fixed cost per call, nothing else."""
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 28, 28, 1])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 28, 28, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "identity", [image], [out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def identity_tflite() -> bytes:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    def serve(image):
        return tf.identity(image)

    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()]).convert()


def bench_floor(test: np.ndarray, fast_runs: int) -> list[dict]:
    """Batch-1 and batch-256 time of an Identity model in TFLite and in onnxruntime (session.run
    and the bound buffers `OnnxModel.predict` uses for one image)."""
    import onnxruntime as ort

    from edge_infer.runtime import session_options

    one, batch = test[:1], test[:256]
    session = ort.InferenceSession(identity_onnx(), session_options(1), providers=["CPUExecutionProvider"])
    image = ort.OrtValue.ortvalue_from_numpy(one.copy())
    binding = session.io_binding()
    binding.bind_ortvalue_input("image", image)
    binding.bind_ortvalue_output("out", ort.OrtValue.ortvalue_from_numpy(one.copy()))

    def bound():
        image.update_inplace(one)
        session.run_with_iobinding(binding)

    single, many = TfliteRunner(identity_tflite()), TfliteRunner(identity_tflite())
    rows = []
    for runtime, call_one, call_many in [
        ("tflite", lambda: single(one), lambda: many(batch)),
        ("onnxruntime session.run", lambda: session.run(["out"], {"image": one}),
         lambda: session.run(["out"], {"image": batch})),
        ("onnxruntime bound buffers", bound, lambda: session.run(["out"], {"image": batch})),
    ]:
        rows.append({"model": "floor (identity)", "runtime": runtime, "precision": "fp32",
                     "latency_us": percentiles(time_calls(call_one, fast_runs, warmup=200)),
                     "throughput_b256": throughput(call_many, 256), "test_accuracy": None, "bytes": None})
    return rows


def markdown(rows: list[dict], info: dict) -> str:
    lines = [f"Machine: {info['cpu']}, {info['logical_cores']} logical cores "
             f"({', '.join(info['instruction_sets'])}); onnxruntime {info['onnxruntime']}; one thread everywhere.",
             "", "| model | runtime | precision | batch-1 p50 (us) | batch-256 images/s | test acc | vs study predict |",
             "|---|---|---|---:|---:|---:|---:|"]
    study = {r["model"]: r["latency_us"]["p50"] for r in rows if r["runtime"] == "keras predict (study)"}
    for r in rows:
        acc = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.4f}"
        speedup = f"{study[r['model']] / r['latency_us']['p50']:,.0f}x" if r["model"] in study else "-"
        lines.append(f"| {r['model']} | {r['runtime']} | {r['precision']} | {r['latency_us']['p50']:,.1f} | "
                     f"{r['throughput_b256']:,.0f} | {acc} | {speedup} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["model"] != "floor (identity)"]  # the floor is in the table, not the chart
    models = list(dict.fromkeys(r["model"] for r in rows))
    runtimes = list(dict.fromkeys((r["runtime"], r["precision"]) for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(runtimes)
    for k, (runtime, precision) in enumerate(runtimes):
        lat = [next(r["latency_us"]["p50"] for r in rows if r["model"] == m and r["runtime"] == runtime
                    and r["precision"] == precision) for m in models]
        thr = [next(r["throughput_b256"] for r in rows if r["model"] == m and r["runtime"] == runtime
                    and r["precision"] == precision) for m in models]
        x = np.arange(len(models)) + k * width
        axes[0].bar(x, lat, width, label=f"{runtime} {precision}")
        axes[1].bar(x, thr, width, label=f"{runtime} {precision}")
    for ax, title in zip(axes, ("batch-1 latency p50 (us, log)", "batch-256 throughput (images/s, log)")):
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(models)) + 0.4 - width / 2, models)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(ROOT / "runs"))
    parser.add_argument("--models", nargs="+", default=list(NAMES))
    parser.add_argument("--predict-runs", type=int, default=200, help="calls of the study's per-image predict")
    parser.add_argument("--fast-runs", type=int, default=3000, help="batch-1 calls for the fast runtimes")
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    test = datasets.load_split("test")
    train = datasets.load_split("train")
    images = datasets.to_model_input(test.images)
    pick = np.random.default_rng(0).choice(len(train.images), 300, replace=False)
    calibration = datasets.to_model_input(train.images[pick])
    shipped = {e["name"] for e in load_manifest()["models"]}
    rows = bench_floor(images, args.fast_runs)
    for name in args.models:
        run_dir = Path(args.runs) / name
        if not (run_dir / "model.keras").is_file() or name not in shipped:
            print(f"skip {name}: needs {run_dir / 'model.keras'} and a shipped ONNX export", file=sys.stderr)
            continue
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        rows += bench_model(name, run_dir, images, test.labels, calibration, args.predict_runs, args.fast_runs)
    info = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "peers.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")
    (RESULTS / "peers.md").write_text(markdown(rows, info))
    plot(rows, RESULTS / "peers.png")
    print(markdown(rows, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
