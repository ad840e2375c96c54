"""End-to-end speed of `edge-infer classify`, measured on this machine (runtime only).

    python benchmarks/classify_speed.py [--model robust] [--precision fp32]

1. 10,000 Fashion-MNIST test images written as 28x28 PNGs (target >= 5,000 images/s);
2. 300 listing-style 1-megapixel JPEG photos (target >= 300 images/s);
2b. 300 phone-style 1-megapixel JPEG photos (a garment on a textured floor, running off the
    frame: these go through garment segmentation; same target);
3. `edge-infer classify one.png` from a cold start, wall time over 10 runs (target < 0.5 s);
4. the split of where the time goes, single-threaded, per image;
5. small jobs loaded on worker threads vs forked worker processes (where the classifier's
   FILES_PER_PROCESS sits).
Writes benchmarks/results/classify_speed_MODEL_PRECISION.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from edge_infer import datasets  # noqa: E402
from edge_infer import files as image_io  # noqa: E402
from edge_infer.classifier import FILES_PER_PROCESS  # noqa: E402
from edge_infer.loading import LoadPool  # noqa: E402
from edge_infer.evaluation.benchmark import end_to_end, end_to_end_graph, machine  # noqa: E402
from train.photo_style import render_floor_photo, render_listing_photo  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def write_pngs(folder: Path, images: np.ndarray) -> None:
    for i, image in enumerate(images):
        Image.fromarray(image, "L").save(folder / f"{i:05d}.png")


def write_photos(folder: Path, images: np.ndarray, seed: int = 0) -> None:
    """Listing-style photos scaled to about one megapixel (1152x864), JPEG quality 90."""
    rng = np.random.default_rng(seed)
    for i, image in enumerate(images):
        photo = render_listing_photo(image, rng).resize((1152, 864), Image.Resampling.BICUBIC)
        photo.save(folder / f"{i:04d}.jpg", quality=90)


def write_phone_photos(folder: Path, images: np.ndarray, seed: int = 0) -> None:
    """Garments on textured floors (the training renderer), scaled to about one megapixel, JPEG 90."""
    rng = np.random.default_rng(seed)
    for i, image in enumerate(images):
        photo = render_floor_photo(image, rng)
        photo.resize((1152, round(1152 * photo.height / photo.width)), Image.Resampling.BICUBIC).save(
            folder / f"{i:04d}.jpg", quality=90)


def threads_or_processes(folder: Path, sizes=(8, 16, 32, 64, 256), workers: int = 2, repeats: int = 3) -> list[dict]:
    """Seconds to load the first n files of `folder` on worker threads vs forked worker
    processes, fork included (best of `repeats`): where FILES_PER_PROCESS should sit."""
    files = image_io.collect([str(folder)]).files
    rows = []
    for n in sizes:
        times = {}
        for kind, processes in (("threads", False), ("processes", True)):
            best = float("inf")
            for _ in range(repeats):
                tick = time.perf_counter()
                with LoadPool(workers, "robust", processes=processes) as pool:
                    if pool.uses_processes != processes:
                        raise RuntimeError("the worker processes did not start: this would time threads twice")
                    pool.result(pool.submit(files[:n]))
                best = min(best, time.perf_counter() - tick)
            times[kind] = best
        rows.append({"files": min(n, len(files)), "threads_s": times["threads"], "processes_s": times["processes"]})
    return rows


def cold_start(path: Path, model: str, precision: str, runs: int = 10) -> dict:
    command = [sys.executable, "-m", "edge_infer", "classify", str(path), "-m", model, "--precision", precision, "-q"]
    walls = []
    for _ in range(runs):
        tick = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - tick)
    return {"command": " ".join(["edge-infer", *command[3:]]), "runs": runs,
            "median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="robust")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--photos", type=int, default=300)
    args = parser.parse_args()
    test = datasets.load_split("test")
    with tempfile.TemporaryDirectory() as tmp:
        pngs, photos, phone = Path(tmp) / "png", Path(tmp) / "photos", Path(tmp) / "phone"
        for folder in (pngs, photos, phone):
            folder.mkdir()
        write_pngs(pngs, test.images)
        write_photos(photos, test.images[: args.photos])
        write_phone_photos(phone, test.images[: args.photos])
        result = {
            "machine": machine(),
            "model": args.model,
            "precision": args.precision,
            "png_28x28": end_to_end([str(pngs)], args.model, args.precision, repeats=3),
            "jpeg_1mp": end_to_end([str(photos)], args.model, args.precision, repeats=3),
            "jpeg_1mp_phone": end_to_end([str(phone)], args.model, args.precision, repeats=3),
            # the same images through the one-file graph (preprocessing inside), one at a time
            "one_file": {"png_28x28": end_to_end_graph([str(pngs)], args.model),
                         "jpeg_1mp": end_to_end_graph([str(photos)], args.model),
                         "jpeg_1mp_phone": end_to_end_graph([str(phone)], args.model)},
            "cold_start_one_png": cold_start(pngs / "00000.png", args.model, args.precision),
            # small jobs: decode on threads or forked processes (the classifier forks from FILES_PER_PROCESS files per worker)
            "files_per_process": FILES_PER_PROCESS,
            "threads_or_processes": {key: threads_or_processes(folder) for key, folder in
                                     (("png_28x28", pngs), ("jpeg_1mp", photos), ("jpeg_1mp_phone", phone))},
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"classify_speed_{args.model}_{args.precision}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    for key in ("png_28x28", "jpeg_1mp", "jpeg_1mp_phone"):
        r = result[key]
        split = ", ".join(f"{k} {v:.3f} ms" for k, v in r["single_thread_ms_per_image"].items())
        print(f"{key}: {r['images']} images, {r['images_per_s']:,.0f} images/s ({r['workers']} workers); "
              f"single-thread split per image: {split}")
        graph = result["one_file"][key]
        if graph:
            print(f"  one file ({graph['file']}), per image: decode+RGBA {graph['decode_rgba_ms']:.3f} ms, graph "
                  f"p50 {graph['graph_ms']['p50']:.3f} ms (p90 {graph['graph_ms']['p90']:.3f}); Python "
                  f"preprocess+infer {r['single_thread_ms_per_image']['preprocess'] + r['single_thread_ms_per_image']['inference']:.3f} ms")
    for key, rows in result["threads_or_processes"].items():
        print(f"{key} loading, threads vs processes (s): " + ", ".join(
            f"{r['files']} files {r['threads_s']:.3f} / {r['processes_s']:.3f}" for r in rows))
    cold = result["cold_start_one_png"]
    print(f"cold start, one PNG: median {cold['median_s']:.3f} s (min {cold['min_s']:.3f}, max {cold['max_s']:.3f})")
    print(f"wrote {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
