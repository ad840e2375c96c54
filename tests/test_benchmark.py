"""edge-infer benchmark measures and reports; no speed is asserted here (see benchmarks/)."""

import json

from click.testing import CliRunner
from PIL import Image

from edge_infer.evaluation import benchmark
from edge_infer.cli import main


def test_model_speed_reports_every_figure():
    result = benchmark.model_speed("model1", "int8", threads=1, batch_sizes=(1, 4), latency_runs=20,
                                   warmup=2, min_seconds=0.01)
    assert result["model"] == "model1" and result["precision"] == "int8" and result["threads"] == 1
    lat = result["latency_us"]
    assert lat["runs"] == 20 and 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    assert set(result["throughput_images_per_s"]) == {"1", "4"}
    assert all(v > 0 for v in result["throughput_images_per_s"].values())
    assert result["session_create_ms"] > 0 and result["first_inference_ms"] > 0
    assert result["macs_per_image"] > 0 and result["bytes"] > 0


def test_end_to_end_counts_images_and_splits_time(tmp_path):
    for i in range(5):
        Image.new("RGB", (64, 48), (250, 250, 250)).save(tmp_path / f"{i}.jpg")
    (tmp_path / "bad.png").write_bytes(b"x")
    result = benchmark.end_to_end([str(tmp_path)], "model1")
    assert result["images"] == 6 and result["failed"] == 1 and result["images_per_s"] > 0
    assert set(result["single_thread_ms_per_image"]) == {"decode", "preprocess", "inference"}


def test_machine_describes_the_cpu():
    info = benchmark.machine()
    assert info["logical_cores"] >= 1 and info["onnxruntime"] and isinstance(info["instruction_sets"], list)


def test_cli_json_and_table(tmp_path):
    Image.new("L", (28, 28)).save(tmp_path / "a.png")
    args = ["benchmark", str(tmp_path), "-m", "model1", "--precision", "fp32", "--repeats", "10",
            "--batch-sizes", "1,2", "--seconds", "0.05"]
    result = CliRunner().invoke(main, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["settings"]["batch_sizes"] == [1, 2] and len(data["models"]) == 1
    assert data["end_to_end"][0]["images"] == 1
    table = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "p50 us" in table.stdout and "End to end" in table.stdout
    bad = CliRunner().invoke(main, ["benchmark", "--batch-sizes", "0,x"])
    assert bad.exit_code == 2
