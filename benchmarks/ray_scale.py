"""`classify-dataset` on a local Ray cluster vs `classify` in one process, on this machine.

    python benchmarks/ray_scale.py [--pngs 10000] [--jpegs 1000] [--actors 1,2] [--batch-size 256] [--repeats 1]

For N 28x28 PNGs (Fashion-MNIST test images) and M one-megapixel listing JPEGs (classify_speed's
renderers), images/s of
1. `Classifier.classify` in one process (its default decode threads, onnxruntime's threads);
2. the `classify-dataset` path (RayClassifier on a local cluster, records streamed into a
   Parquet file) with each actor count (one CPU each): the whole job, and per busy actor (images
   over the seconds spent inside the actors: what each added actor adds to a long job), the rest
   of the wall time being the job's fixed cost (scheduling, actor start-up, waiting at the end);
3. the local cluster's start-up time (not counted in any throughput);
4. the resident memory of one actor: started (a Ray worker with edge_infer imported), with its
   model loaded, and its peak after classifying one batch of the JPEGs.
Writes benchmarks/results/ray_scale.json. Needs the `ray` extra and `train/` (the renderers).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from classify_speed import write_photos, write_pngs  # noqa: E402
from edge_infer import Classifier, datasets, ray_data  # noqa: E402
from edge_infer.evaluation.benchmark import machine  # noqa: E402
from edge_infer.files import write_atomic  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def fashion_images(count: int) -> np.ndarray:
    """`count` Fashion-MNIST test images, the set repeated when more are asked for."""
    images = datasets.load_split("test").images
    return images[np.arange(count) % len(images)]


def resident_memory() -> dict:
    """This process's resident set now and at its peak, in MiB (Linux /proc)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss_mib": round(fields.get("VmRSS", 0.0), 1), "peak_rss_mib": round(fields.get("VmHWM", 0.0), 1)}


def start_cluster(ray) -> dict:
    tick = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    started = time.perf_counter() - tick
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # a line per dataset otherwise
    tick = time.perf_counter()
    ray.get(ray.remote(num_cpus=1)(lambda: None).remote())  # the first worker process
    return {"init_s": round(started, 3), "first_task_s": round(time.perf_counter() - tick, 3)}


def single_process(folder: Path, model: str, precision: str | None, repeats: int) -> dict:
    classifier = Classifier(model, precision)
    walls = []
    for _ in range(repeats):
        tick = time.perf_counter()
        records = classifier.classify(str(folder))
        walls.append(time.perf_counter() - tick)
    wall = min(walls)
    return {"images": len(records), "wall_s": round(wall, 3), "images_per_s": round(len(records) / wall, 1),
            "decode_threads": classifier.workers}


class TimedBatches(ray_data.ClassifyBatches):
    """The actors' work, with the seconds each batch took inside the actor spread over its rows."""

    def __call__(self, batch):
        import pyarrow as pa

        tick = time.perf_counter()
        table = super().__call__(batch)
        seconds = (time.perf_counter() - tick) / max(1, table.num_rows)
        return table.append_column("busy_s", pa.array([seconds] * table.num_rows, pa.float64()))


class TimedRayClassifier(ray_data.RayClassifier):
    worker = TimedBatches


class BusyTime:
    """A records Dataset as write_records reads it: the timing column summed, then dropped."""

    def __init__(self, dataset):
        self.dataset, self.seconds = dataset, 0.0

    def iter_batches(self, **options):
        for batch in self.dataset.iter_batches(**options):
            self.seconds += sum(batch.column("busy_s").to_pylist())
            yield batch.drop_columns(["busy_s"])


def ray_job(folder: Path, classifier: ray_data.RayClassifier, output: Path) -> dict:
    """One whole classify-dataset job, as the CLI runs it (less the cluster start)."""
    tick = time.perf_counter()
    found = ray_data.find_images(str(folder))
    images = ray_data.images_dataset(found, block_rows=4 * classifier.options["batch_size"],
                                     min_blocks=4 * classifier.pool_size())
    records = BusyTime(classifier.classify(images))
    tally = ray_data.write_records(records, output, classifier.top_k)
    return {"images": sum(tally.per_label.values()) + tally.failed, "wall_s": time.perf_counter() - tick,
            "busy_s": records.seconds}


def on_ray(folder: Path, actors: int, args, scratch: Path) -> dict:
    """Whole-job throughput, and per busy actor: images over the seconds spent inside the actors
    (decode, preprocess, inference, records to Arrow), which is what each added actor adds once
    a job is long enough; the rest of the wall time per actor is the job's fixed cost."""
    classifier = TimedRayClassifier(args.model, args.precision, batch_size=args.batch_size, actors=actors)
    best = min((ray_job(folder, classifier, scratch / "out.parquet") for _ in range(args.repeats)),
               key=lambda run: run["wall_s"])
    per_actor = best["images"] / best["busy_s"]
    return {"actors": actors, "images": best["images"], "wall_s": round(best["wall_s"], 3),
            "images_per_s": round(best["images"] / best["wall_s"], 1),
            "busy_s_all_actors": round(best["busy_s"], 3),
            "images_per_s_per_busy_actor": round(per_actor, 1),
            "job_fixed_cost_s": round(best["wall_s"] - best["busy_s"] / actors, 3)}


def actor_memory(ray, jpegs: Path, model: str, precision: str | None) -> dict:
    """One actor (one CPU), as the pool makes them: started, with its Classifier, after one batch."""
    classifier = ray_data.RayClassifier(model, precision, actors=1)
    found = ray_data.find_images(str(jpegs))
    batch = ray_data.images_dataset(found, block_rows=256, min_blocks=1).limit(256).to_arrow_refs()[0]
    model_file = ray_data.ModelFile(classifier.model_file.name, ray.put(classifier.model_file.content))

    @ray.remote(num_cpus=1)
    class Probe:
        def memory(self):
            return resident_memory()

        def load(self, model_file, options):
            self.udf = ray_data.ClassifyBatches(model_file, options)
            return resident_memory()

        def classify(self, table):
            return len(self.udf(table)), resident_memory()

    probe = Probe.remote()
    started = ray.get(probe.memory.remote())  # unpickling Probe imported edge_infer already
    loaded = ray.get(probe.load.remote(model_file, classifier.options))
    rows, after = ray.get(probe.classify.remote(batch))
    del probe  # the last handle gone, the actor exits
    return {"started": started, "model_loaded": loaded, "after_batch": after, "batch_images": rows,
            "batch_kind": "one-megapixel JPEG"}


def measure(args, ray, scratch: Path) -> dict:
    pngs, jpegs = scratch / "png", scratch / "jpeg"
    for folder in (pngs, jpegs):
        folder.mkdir()
    write_pngs(pngs, fashion_images(args.pngs))
    write_photos(jpegs, fashion_images(args.jpegs))
    result = {"machine": machine(), "ray": ray.__version__, "model": args.model,
              "precision": args.precision or "preferred", "batch_size": args.batch_size,
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
              "cluster_start": start_cluster(ray)}
    for key, folder in (("png_28x28", pngs), ("jpeg_1mp", jpegs)):
        single = single_process(folder, args.model, args.precision, args.repeats)
        runs = [on_ray(folder, n, args, scratch) for n in args.actors]
        for run in runs:
            run["vs_single_process"] = round(run["images_per_s"] / single["images_per_s"], 3)
        result[key] = {"single_process": single, "ray": runs}
    result["actor_memory"] = actor_memory(ray, jpegs, args.model, args.precision)
    return result


def report(result: dict) -> None:
    start = result["cluster_start"]
    print(f"local cluster: ray.init {start['init_s']:.2f} s, first task {start['first_task_s']:.2f} s "
          f"(load average at start {result['load_average_at_start']})")
    for key in ("png_28x28", "jpeg_1mp"):
        single = result[key]["single_process"]
        print(f"{key}: {single['images']} images; one process {single['images_per_s']:,.0f} images/s")
        for run in result[key]["ray"]:
            print(f"  {run['actors']} actor(s): {run['images_per_s']:,.0f} images/s whole job "
                  f"({run['vs_single_process']:.2f}x one process); {run['images_per_s_per_busy_actor']:,.0f} "
                  f"images/s per busy actor; fixed cost {run['job_fixed_cost_s']:.1f} s")
    memory = result["actor_memory"]
    print(f"one actor: started {memory['started']['rss_mib']:.0f} MiB, model loaded "
          f"{memory['model_loaded']['rss_mib']:.0f} MiB, peak after {memory['batch_images']} JPEGs "
          f"{memory['after_batch']['peak_rss_mib']:.0f} MiB resident")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pngs", type=int, default=10_000)
    parser.add_argument("--jpegs", type=int, default=1_000)
    parser.add_argument("--actors", default="1,2", help="comma-separated actor counts")
    parser.add_argument("--model", default="robust")
    parser.add_argument("--precision", choices=("fp32", "int8"), help="default: the model's preferred one")
    parser.add_argument("--batch-size", type=int, default=256, help="images per actor call, as the CLI's")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per measurement (the best is kept)")
    parser.add_argument("--json", type=Path, default=RESULTS / "ray_scale.json")
    args = parser.parse_args()
    args.actors = [int(n) for n in args.actors.split(",")]
    ray = ray_data.require_ray()
    with tempfile.TemporaryDirectory(prefix="ray-scale-") as scratch:
        try:
            result = measure(args, ray, Path(scratch))
        finally:
            ray.shutdown()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.json, json.dumps(result, indent=2) + "\n")
    report(result)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
