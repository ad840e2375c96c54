"""edge-infer benchmark measures and reports; no speed is asserted here (see benchmarks/)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_infer.evaluation import benchmark
from edge_infer.cli import main

ROOT = Path(__file__).resolve().parents[1]


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


def test_the_one_file_graph_is_timed_for_models_that_ship_one(tmp_path):
    for i in range(3):
        Image.new("RGB", (64, 48), (250, 250, 250)).save(tmp_path / f"{i}.jpg")
    (tmp_path / "bad.png").write_bytes(b"x")
    result = benchmark.end_to_end_graph([str(tmp_path)], "robust")
    assert result["file"] == "robust.e2e.onnx" and result["images"] == 3  # the broken file is skipped
    assert result["decode_rgba_ms"] > 0 and result["graph_ms"]["p50"] > 0 and result["graph_ms"]["runs"] == 3
    assert benchmark.end_to_end_graph([str(tmp_path)], "model1") is None  # no end-to-end file shipped


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


def _speed_row(model, precision, accuracy, images_per_s):
    return {"model": model, "precision": precision, "test_accuracy": accuracy,
            "latency_us": {"p50": 1e6 / images_per_s}, "throughput_images_per_s": {"1": 1.0, "256": images_per_s}}


def test_the_faster_precision_is_chosen_unless_it_costs_accuracy():
    choices = benchmark.choose_precisions([
        _speed_row("small", "fp32", 0.90, 2000), _speed_row("small", "int8", 0.90, 1000),
        _speed_row("big", "fp32", 0.93, 100), _speed_row("big", "int8", 0.929, 300),
        _speed_row("lossy", "fp32", 0.93, 100), _speed_row("lossy", "int8", 0.92, 300),
    ])
    assert {name: c["precision"] for name, c in choices.items()} == {"small": "fp32", "big": "int8", "lossy": "fp32"}
    assert choices["big"]["images_per_s"] == {"fp32": 100, "int8": 300}  # the evidence travels with the choice


def test_choose_precision_script_records_the_choice_and_export_keeps_it(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import choose_precision

    from export.pipeline import update_manifest

    manifest = tmp_path / "models.json"
    manifest.write_text(json.dumps({"models": []}))
    result = {"machine": {"cpu": "test cpu"}, "models": [_speed_row("small", "fp32", 0.9, 2000),
                                                          _speed_row("small", "int8", 0.9, 1000)]}
    (tmp_path / "bench.json").write_text(json.dumps(result))
    assert choose_precision.main([str(tmp_path / "bench.json"), "--write", "--manifest", str(manifest)]) == 0
    update_manifest(manifest, [{"name": "small", "precision": "fp32", "file": "small.onnx"}])
    written = json.loads(manifest.read_text())
    assert written["preferred_precision"] == {"small": "fp32"}
    assert written["preferred_precision_measured"]["cpu"] == "test cpu"
    assert [e["file"] for e in written["models"]] == ["small.onnx"]


def test_results_are_stored_under_their_key_without_losing_the_others(tmp_path):
    path = tmp_path / "results.json"
    benchmark.store_under_key(path, "v1", {"accuracy": 0.5})
    benchmark.store_under_key(path, "v2", [1, 2])
    benchmark.store_under_key(path, "v1", {"accuracy": 0.6})
    assert json.loads(path.read_text()) == {"v1": {"accuracy": 0.6}, "v2": [1, 2]}



@pytest.fixture(scope="module")
def frontier():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import frontier

    return frontier


def _frontier_row(label, macs, **accuracy):
    return {"label": label, "macs_per_image": macs, "accuracy": accuracy}


def test_a_cheaper_variant_qualifies_only_within_the_tolerance_on_every_measure(frontier):
    rows = [_frontier_row("reference", 100, clean=0.930, realdev=0.76),
            _frontier_row("exactly the tolerance", 25, clean=0.927, realdev=0.76),
            _frontier_row("loses photos", 25, clean=0.935, realdev=0.75),
            _frontier_row("better everywhere", 50, clean=0.94, realdev=0.80),
            _frontier_row("same cost", 100, clean=0.95, realdev=0.80)]
    frontier.verdicts(rows, tolerance_points=0.3)
    assert [r["qualifies"] for r in rows] == [False, True, False, True, False]
    assert abs(rows[2]["worst_drop_points"] - 1.0) < 1e-9 and rows[2]["worst_measure"] == "realdev"
    assert rows[3]["worst_drop_points"] == 0.0 and rows[3]["worst_measure"] is None
    assert rows[1]["mac_fraction"] == 0.25


def test_frontier_script_scores_export_folders_and_marks_a_cheaper_copy(frontier, tmp_path):
    from edge_infer.runtime import MODELS_DIR

    from .conftest import make_dataset

    data = make_dataset(tmp_path / "data", n_train=10, n_test=100)
    cheaper = tmp_path / "cheaper"  # the shipped robust files, claiming half the MACs
    cheaper.mkdir()
    manifest = json.loads((MODELS_DIR / "models.json").read_text())
    manifest["models"] = [dict(e, macs_per_image=e["macs_per_image"] // 2) for e in manifest["models"]
                          if e["name"] == "robust"]
    for entry in manifest["models"]:
        (cheaper / entry["file"]).write_bytes((MODELS_DIR / entry["file"]).read_bytes())
    (cheaper / "models.json").write_text(json.dumps(manifest))
    out = tmp_path / "results"
    assert frontier.main([f"shipped={MODELS_DIR}", f"cheaper={cheaper}", "--folder", str(ROOT / "unseen" / "shifted"),
                          "--data-dir", str(data), "--corruption-images", "20", "--latency-runs", "10",
                          "--out", str(out)]) == 0
    rows = json.loads((out / "frontier.json").read_text())["by_precision"]["int8"]
    assert [r["label"] for r in rows] == ["shipped", "cheaper"]
    assert rows[0]["accuracy"] == rows[1]["accuracy"]  # the same weights score the same
    assert set(rows[0]["accuracy"]) == {"clean", "mCA", str(ROOT / "unseen" / "shifted"), "pool hold-out"}
    assert [r["qualifies"] for r in rows] == [False, True] and rows[1]["mac_fraction"] == 0.5
    assert "| cheaper | int8 |" in (out / "frontier.md").read_text()
    assert (out / "frontier.png").stat().st_size > 0


@pytest.mark.parametrize("args, message", [(["nolabel"], "LABEL=FOLDER"), (["a=x", "a=y"], "own label"),
                                           (["a=x", "--latency-runs", "0"], "latency-runs")])
def test_frontier_usage_errors(frontier, args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        frontier.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_frontier_names_a_bad_export_folder_in_one_line(frontier, tmp_path, capsys):
    (tmp_path / "models.json").write_text(json.dumps({"models": [{"name": "robust", "precision": "int8",
                                                                    "file": "robust.int8.onnx"}]}))
    assert frontier.main([f"old={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "params" in err and err.count("\n") == 1
    (tmp_path / "models.json").write_text("{not json")
    assert frontier.main([f"broken={tmp_path}"]) == 2
    assert "cannot read the model manifest" in capsys.readouterr().err


def test_confidence_script_reports_coverage_and_accuracy_per_threshold(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import confidence
    import pool_holdout

    from edge_infer.classifier import Classifier
    from edge_infer.evaluation.evaluate import evaluate_folder, read_labelled_folder
    from train import photo_pool

    shifted = ROOT / "unseen" / "shifted"
    out = tmp_path / "confidence.json"
    assert confidence.main([str(shifted), "--by-prefix", "zz", "--json", str(out)]) == 0
    sets = json.loads(out.read_text())["current"]["sets"]
    assert set(sets) == {"pool hold-out", str(shifted)}  # an empty prefix split is left out
    for result in sets.values():
        coverage = [row["coverage"] for row in result["thresholds"]]
        assert coverage[0] == 1.0 and coverage == sorted(coverage, reverse=True)
    # at no threshold, the accuracy is the plain accuracy the other scripts report
    pool = pool_holdout.score("robust", "int8", photo_pool.load_photos(photo_pool.POOL_FILE, split="holdout"))
    assert sets["pool hold-out"]["images"] == pool["images"]
    assert sets["pool hold-out"]["thresholds"][0]["accuracy"] == pytest.approx(pool["accuracy"])
    folder = evaluate_folder(Classifier("robust", "int8"), read_labelled_folder(shifted), "robust")
    assert sets[str(shifted)]["thresholds"][0]["accuracy"] == pytest.approx(folder["accuracy"])
    # bad input: one line, exit 2; a folder with no images is reported, not a crash
    assert confidence.main([str(tmp_path)]) == 2
    assert confidence.main([str(shifted), "-m", "no_such_model"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "no labels.csv" in errors[0] and "no_such_model" in errors[1]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "labels.csv").write_text("file,class_index\n")
    assert confidence.main([str(empty)]) == 0
    assert f"{empty}: no images" in capsys.readouterr().out


def test_the_ensemble_script_scores_the_mean_of_the_members_answers():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import ensemble

    from edge_infer.classifier import Classifier
    from edge_infer.evaluation.metrics import paired_test

    rng = np.random.default_rng(0)
    arrays = rng.random((40, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, 40)
    labels[:3] = -1  # unreadable files: wrong for every model
    table, against_first = ensemble.accuracies(["model1", "model3"], {"noise": (arrays, labels)})
    mean = (Classifier("model1").classify_arrays(arrays) + Classifier("model3").classify_arrays(arrays)) / 2
    assert table["mean of all"]["noise"] == pytest.approx(float((mean.argmax(1) == labels).mean()))
    right = {}
    for model in ("model1", "model3"):
        right[model] = Classifier(model).classify_arrays(arrays).argmax(1) == labels
        assert table[model]["noise"] == pytest.approx(float(right[model].mean()))
    assert set(against_first) == {"model3", "mean of all"}  # every row but the first, on the same images
    assert against_first["model3"]["noise"] == paired_test(right["model3"], right["model1"])
    mean_right = mean.argmax(1) == labels
    assert against_first["mean of all"]["noise"] == paired_test(mean_right, right["model1"])


def test_the_ensemble_script_keeps_two_folders_of_one_name_apart(tmp_path, real_test_set):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import ensemble

    from PIL import Image

    folders = []
    for parent, count in (("small", 2), ("large", 3)):
        folder = tmp_path / parent / "shifted"
        folder.mkdir(parents=True)
        for i in range(count):
            Image.new("L", (28, 28), 40 * i).save(folder / f"{i}.png")
        (folder / "labels.csv").write_text("file,class_index\n" + "".join(f"{i}.png,{i}\n" for i in range(count)))
        folders.append(folder)
    sets = ensemble.labelled_sets(folders, [])
    assert len(sets["shifted"][1]) == 2 and len(sets[str(folders[1])][1]) == 3


def _paired(only_this: int, only_reference: int) -> dict:
    from edge_infer.evaluation.metrics import _discordant_test

    return _discordant_test(only_this, only_reference)


def _decide_module():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import decide

    return decide


def test_a_candidate_ships_when_it_wins_on_phone_photos_and_loses_nowhere_beyond_luck():
    decide = _decide_module()
    sets = {name: _paired(5, 5) for name in decide.GUARD}
    sets["realdev cds"], sets["pool hold-out"] = _paired(17, 7), _paired(25, 15)  # each p > 0.05, together 0.017
    sets["listing2000"] = _paired(34, 54)  # p 0.04 alone, 0.25 after Holm over six guards
    result = decide.decision(sets)
    assert result["gain"]["only_this"] == 42 and result["gain"]["p_value"] < 0.05 and result["better"]
    assert result["guards"]["listing2000"]["holm_p"] == pytest.approx(6 * sets["listing2000"]["p_value"])
    assert not result["guards"]["listing2000"]["loss"] and result["ships"]

    sets["listing2000"] = _paired(20, 80)  # a loss no correction explains away
    result = decide.decision(sets)
    assert result["guards"]["listing2000"]["loss"] and not result["ships"]
    sets["listing2000"] = _paired(80, 20)  # as uneven, but a gain: never a loss
    assert decide.decision(sets)["ships"]
    sets["realdev cds"] = _paired(7, 7)
    assert not decide.decision(sets)["better"]  # the phone-photo gain is no longer shown


def test_a_cheaper_model_needs_no_gain_but_must_stay_within_a_third_of_a_point_where_that_is_measurable():
    decide = _decide_module()
    sets = {name: _paired(5, 5) for name in decide.GUARD}
    images = {"clean": 10_000, "listing2000": 2_000}
    result = decide.decision(sets, images=images, cheaper=True)
    assert not result["better"] and result["held"] and result["ships"]  # level everywhere is enough
    sets["clean"] = _paired(100, 131)  # 0.31 points behind on 10,000: p 0.05, no loss after Holm, but beyond 0.3
    result = decide.decision(sets, images=images, cheaper=True)
    assert not result["guards"]["clean"]["loss"] and result["close"]["clean"] == pytest.approx(-0.0031)
    assert not result["ships"]
    sets["clean"] = _paired(100, 129)
    assert decide.decision(sets, images=images, cheaper=True)["ships"]
    sets["realdev cds"] = _paired(4, 6)  # two phone photos fewer right: not held
    assert not decide.decision(sets, images=images, cheaper=True)["ships"]
    with pytest.raises(ValueError, match="no result for listing2000"):
        decide.decision(sets, images={"clean": 10_000}, cheaper=True)


def test_decide_reads_an_ensemble_comparison_and_exits_by_its_verdict(tmp_path, capsys):
    decide = _decide_module()
    winning = {name: _paired(5, 5) for name in decide.GUARD} | {"realdev cds": _paired(30, 5)}
    losing = winning | {"unseen": _paired(0, 30)}
    results = tmp_path / "ensemble.json"
    results.write_text(json.dumps({
        "good": {"models": ["robust", "cand.onnx"], "against_first": {"cand.onnx": winning}},
        "bad": {"models": ["robust", "cand.onnx"], "against_first": {"cand.onnx": losing}},
        "thin": {"models": ["robust", "cand.onnx"], "against_first": {"cand.onnx": {"clean": _paired(1, 1)}}}}))
    assert decide.main([str(results), "good"]) == 0 and capsys.readouterr().out.strip().endswith("ships")
    assert decide.main([str(results), "bad"]) == 1
    out = capsys.readouterr().out
    assert "LOSS" in out and out.strip().endswith("does not ship")
    assert decide.main([str(results), "missing"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {results} [missing]: missing not found"
    assert decide.main([str(results), "thin"]) == 2
    assert "no paired result for realdev cds, pool hold-out" in capsys.readouterr().err
