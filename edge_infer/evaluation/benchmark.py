"""Speed on this machine: model-only latency and throughput, and end to end on folders.

Measures with time.perf_counter; returns plain data for the CLI to format.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .. import files as image_io
from ..classifier import Classifier
from ..preprocess import preprocess
from ..runtime import OnnxModel

DEFAULT_BATCH_SIZES = (1, 32, 256)
_INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
                      "amx_int8", "amx_bf16", "neon", "asimddp")


def machine() -> dict:
    """CPU model, cores and the instruction sets that matter for int8 and fp32 kernels."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and cpu in ("", platform.machine(), platform.processor()):
                cpu = value.strip()
            elif key in ("flags", "Features"):
                flags.update(value.split())
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "instruction_sets": [flag for flag in _INTERESTING_FLAGS if flag in flags],
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }


def percentiles(samples_s: list[float], unit: float = 1e6) -> dict:
    """p50/p90/p99/mean of timings in seconds, in microseconds (unit 1e6) or milliseconds (1e3)."""
    scaled = np.asarray(samples_s) * unit
    return {"p50": float(np.percentile(scaled, 50)), "p90": float(np.percentile(scaled, 90)),
            "p99": float(np.percentile(scaled, 99)), "mean": float(scaled.mean()), "runs": len(scaled)}


def time_calls(call, runs: int, warmup: int = 5) -> list[float]:
    """Seconds per call of `call()`, `runs` times, after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        tick = time.perf_counter()
        call()
        samples.append(time.perf_counter() - tick)
    return samples


def throughput(call, batch: int, min_seconds: float = 1.0) -> float:
    """Images per second of `call()` on a batch of `batch`: one warm-up call, then calls for at
    least `min_seconds` (and at least three)."""
    call()
    runs, tick = 0, time.perf_counter()
    while True:
        call()
        runs += 1
        elapsed = time.perf_counter() - tick
        if elapsed >= min_seconds and runs >= 3:
            return batch * runs / elapsed


def model_speed(model: str, precision: str, threads: int | None = None,
                batch_sizes=DEFAULT_BATCH_SIZES, latency_runs: int = 2000, warmup: int = 50,
                min_seconds: float = 1.0, seed: int = 0) -> dict:
    """Session creation, first inference, batch-1 latency percentiles, throughput per batch size."""
    start = time.perf_counter()
    loaded = OnnxModel(model, precision, threads)
    created = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    one = rng.random((1, 28, 28, 1), dtype=np.float32)
    start = time.perf_counter()
    loaded.predict(one)
    first = time.perf_counter() - start
    samples = time_calls(lambda: loaded.predict(one), latency_runs, warmup)
    per_second = {}
    for batch_size in batch_sizes:
        batch = rng.random((batch_size, 28, 28, 1), dtype=np.float32)
        per_second[str(batch_size)] = throughput(lambda: loaded.predict(batch), batch_size, min_seconds)
    manifest = loaded.info.manifest or {}
    return {
        "model": loaded.info.name,
        "precision": loaded.info.precision,
        "file": str(loaded.info.path),
        "bytes": loaded.info.path.stat().st_size,
        "params": loaded.info.metadata.get("params"),
        "macs_per_image": manifest.get("macs_per_image"),
        "test_accuracy": loaded.info.metadata.get("test_accuracy"),
        "threads": threads or "default",
        "session_create_ms": created * 1e3,
        "first_inference_ms": first * 1e3,
        "latency_us": percentiles(samples),
        "throughput_images_per_s": per_second,
    }


def end_to_end(inputs: list[str], model: str, precision: str | None = None, threads: int | None = None,
               batch_size: int = 256, workers: int | None = None, recursive: bool = True,
               preprocessing: str = "robust", repeats: int = 1) -> dict:
    """Images per second for decode + preprocess + infer through the real classify path,
    plus a single-threaded split of where the time goes per image."""
    collected = image_io.collect(inputs, recursive=recursive)
    files = [f for f in collected.files if not f.error]
    if not files:
        raise ValueError(f"no images found in {' '.join(inputs)}")
    classifier = Classifier(model, precision, preprocessing, batch_size, threads, workers)
    walls = []
    for _ in range(repeats):
        tick = time.perf_counter()
        records = classifier.classify_files(files)
        walls.append(time.perf_counter() - tick)
    wall = min(walls)
    sample = files[: min(len(files), 500)]
    decode = prep = 0.0
    arrays = []
    for item in sample:
        tick = time.perf_counter()
        try:
            image = image_io.open_image(item.path)
        except image_io.ImageError:
            continue
        mid = time.perf_counter()
        arrays.append(preprocess(image, preprocessing))
        done = time.perf_counter()
        decode += mid - tick
        prep += done - mid
    tick = time.perf_counter()
    if arrays:
        classifier.classify_arrays(np.stack(arrays))
    infer = time.perf_counter() - tick
    n = max(1, len(arrays))
    return {
        "inputs": inputs,
        "images": len(files),
        "failed": sum(1 for r in records if r.error),
        "workers": classifier.workers,
        "worker_processes": classifier.forks_for(len(files)),
        "batch_size": batch_size,
        "wall_s": wall,
        "images_per_s": len(files) / wall,
        "single_thread_ms_per_image": {"decode": 1e3 * decode / n, "preprocess": 1e3 * prep / n,
                                       "inference": 1e3 * infer / n},
    }


def end_to_end_graph(inputs: list[str], model: str, recursive: bool = True, limit: int = 500) -> dict | None:
    """The same images through the model's one-file end-to-end graph (preprocessing inside),
    one at a time on one thread: ms per image for the caller's part (decode and RGBA bytes)
    and for the graph. None when the model ships no end-to-end file."""
    from ..preprocess import rgba_bytes
    from ..runtime import ModelError, create_session, resolve_end_to_end

    try:
        path, _ = resolve_end_to_end(model)
    except ModelError:
        return None
    session = create_session(str(path), threads=1)
    files = [f for f in image_io.collect(inputs, recursive=recursive).files if not f.error][:limit]
    session.run(None, {"rgba": np.zeros((28, 28, 4), np.uint8)})  # warm-up, as the other timings have
    decode, graph = [], []
    for item in files:
        tick = time.perf_counter()
        try:
            rgba = rgba_bytes(image_io.open_image(item.path))
        except image_io.ImageError:
            continue
        mid = time.perf_counter()
        session.run(None, {"rgba": rgba})
        graph.append(time.perf_counter() - mid)
        decode.append(mid - tick)
    if not graph:
        return None
    return {"file": path.name, "images": len(graph), "decode_rgba_ms": 1e3 * float(np.mean(decode)),
            "graph_ms": percentiles(graph, unit=1e3)}


def run_benchmark(models: list[str], precisions: list[str], batch_sizes=DEFAULT_BATCH_SIZES, threads: int = 1,
                  latency_runs: int = 2000, seconds: float = 1.0, folders=(), on_step=None) -> dict:
    """Everything `edge-infer benchmark` reports: the machine, the settings, model-only speed
    per model and precision, and end-to-end images/s on each folder (the first model, at the only
    precision asked for, else at its preferred one).
    `on_step(text)` is told what is measured next (each takes seconds)."""
    step = on_step or (lambda text: None)
    speed = []
    for name in models:
        for precision in precisions:
            step(f"{name}/{precision}")
            speed.append(model_speed(name, precision, threads, batch_sizes, latency_runs, min_seconds=seconds))
    end = []
    for folder in folders:
        step(f"{folder} end to end")
        result = end_to_end([folder], models[0], precisions[0] if len(precisions) == 1 else None)
        result["one_file"] = end_to_end_graph([folder], models[0])
        end.append(result)
    return {
        "machine": machine(),
        "settings": {"threads": threads, "batch_sizes": list(batch_sizes), "latency_runs": latency_runs,
                     "throughput_seconds": seconds},
        "models": speed,
        "end_to_end": end,
    }


def store_under_key(path: str | os.PathLike, key: str, value) -> None:
    """Put `value` under `key` in the JSON object at `path` (created if missing), atomically:
    the results files of benchmarks/ keep one entry per model version or experiment."""
    import json

    path = Path(path)
    table = json.loads(path.read_text()) if path.is_file() else {}
    table[key] = value
    image_io.write_atomic(path, json.dumps(table, indent=2) + "\n")


def choose_precisions(speed: list[dict], max_accuracy_loss: float = 0.002) -> dict[str, dict]:
    """Per model, the precision to run by default, from `model_speed` results (`models` in a
    benchmark JSON): among the precisions within `max_accuracy_loss` of the model's best test
    accuracy, the one with the highest throughput at the largest batch measured (what
    `classify` runs on a folder). Returns {name: {"precision", "images_per_s", "latency_p50_us",
    "test_accuracy"}}, the last three per precision, so the choice can be checked."""
    by_model: dict[str, list[dict]] = {}
    for row in speed:
        by_model.setdefault(row["model"], []).append(row)
    choices = {}
    for name, rows in by_model.items():
        best_accuracy = max(row["test_accuracy"] or 0.0 for row in rows)
        eligible = [row for row in rows if (row["test_accuracy"] or 0.0) >= best_accuracy - max_accuracy_loss]

        def bulk_speed(row):
            rates = row["throughput_images_per_s"]
            return rates[max(rates, key=int)]

        chosen = max(eligible, key=bulk_speed)
        choices[name] = {
            "precision": chosen["precision"],
            "images_per_s": {row["precision"]: round(bulk_speed(row)) for row in rows},
            "latency_p50_us": {row["precision"]: round(row["latency_us"]["p50"], 1) for row in rows},
            "test_accuracy": {row["precision"]: row["test_accuracy"] for row in rows},
        }
    return choices
