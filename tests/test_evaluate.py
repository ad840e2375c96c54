"""edge-infer evaluate: labelled folders, the corruption suite on (tiny) test data, errors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_infer.cli import main
from edge_infer.evaluation import metrics
from edge_infer.evaluation.evaluate import LabelsError, read_labelled_folder

from .conftest import make_dataset


@pytest.fixture
def labelled(tmp_path):
    folder = tmp_path / "labelled"
    folder.mkdir()
    rows = ["file,class_index,class_name"]
    for i in range(4):
        image = Image.new("RGB", (120, 160), (250, 250, 250))
        image.paste((20, 20, 20), (30, 10 + i, 90, 150))
        image.save(folder / f"{i}.png")
        rows.append(f"{i}.png,{i % 2},x")
    (folder / "broken.png").write_bytes(b"nope")
    rows.append("broken.png,1,x")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def invoke(*args):
    return CliRunner().invoke(main, ["evaluate", *args], catch_exceptions=False)


def test_folder_scores_count_unreadable_files_as_wrong(labelled):
    result = invoke(str(labelled), "--no-test-set", "--format", "json")
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)["results"][0]["folders"][str(labelled)]
    for method in ("robust", "plain"):
        assert scores[method]["images"] == 5
        assert scores[method]["errors"] == [{"path": "broken.png", "error": "not a recognised image format"}]
        assert len(scores[method]["predictions"]) == 4
        correct = sum(p["label"] == p["predicted"] for p in scores[method]["predictions"])
        assert scores[method]["accuracy"] == pytest.approx(correct / 5)
        assert scores[method]["accuracy_interval"] == pytest.approx(metrics.wilson_interval(correct, 5))


def test_every_model_after_the_first_is_compared_with_it_on_the_same_images(tmp_path, labelled):
    data = make_dataset(tmp_path / "data", n_train=50, n_test=60)
    result = invoke(str(labelled), "--data-dir", str(data), "--corruption-images", "0", "-m", "model3",
                    "-m", "model1", "--precision", "fp32", "--format", "json")
    assert result.exit_code == 0, result.stderr
    first, second = json.loads(result.stdout)["results"]
    assert "compared_with" not in first
    compared = second["compared_with"]
    assert compared["reference_index"] == 0
    assert compared["reference"].startswith("model3/fp32 (") and compared["reference"].endswith("model3.onnx)")
    low, high = first["clean"]["accuracy_interval"]
    assert low <= first["clean"]["accuracy"] <= high

    def right(r, method):  # every file of the folder, the unreadable one wrong
        found = {p["path"] for p in r["folders"][str(labelled)][method]["predictions"] if p["predicted"] == p["label"]}
        return [name in found for name in ("0.png", "1.png", "2.png", "3.png", "broken.png")]

    for method in ("robust", "plain"):
        assert compared["folders"][str(labelled)][method] == metrics.paired_test(right(second, method),
                                                                                right(first, method))
    # the clean test set is compared too; its counts add up to the accuracy difference
    clean = compared["clean"]
    assert clean["only_this"] - clean["only_reference"] == round(60 * (second["clean"]["accuracy"]
                                                                       - first["clean"]["accuracy"]))
    table = invoke(str(labelled), "--data-dir", str(data), "--corruption-images", "0", "-m", "model3",
                   "-m", "model1", "--precision", "fp32").stdout
    assert "95 % interval" in table and "equally accurate" in table
    assert f"+{clean['only_this']} / -{clean['only_reference']}" in table


def test_each_model_is_compared_with_the_first_at_its_own_precision(tmp_path, labelled):
    data = make_dataset(tmp_path / "data", n_train=50, n_test=60)
    result = invoke(str(labelled), "--data-dir", str(data), "--corruption-images", "0", "-m", "model3",
                    "-m", "model1", "--precision", "fp32", "--precision", "int8", "--format", "json")
    results = json.loads(result.stdout)["results"]
    assert [(r["model"], r["precision"]) for r in results] == [("model3", "fp32"), ("model3", "int8"),
                                                              ("model1", "fp32"), ("model1", "int8")]
    assert [r.get("compared_with", {}).get("reference_index") for r in results] == [None, 0, 0, 1]


def test_comparisons_without_the_test_set_and_with_a_folder_named_clean(tmp_path, labelled, monkeypatch):
    monkeypatch.chdir(labelled.parent)
    labelled.rename(labelled.parent / "clean")  # a folder's name must not collide with the test set's key
    result = invoke("clean", "--no-test-set", "-m", "model3", "-m", "model1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    compared = json.loads(result.stdout)["results"][1]["compared_with"]
    assert "clean" not in compared  # no test set was scored
    paired = compared["folders"]["clean"]["robust"]
    assert paired["only_this"] + paired["only_reference"] <= 4 and 0 < paired["p_value"] <= 1


def test_one_model_gets_intervals_and_no_comparison_columns(labelled):
    table = invoke(str(labelled), "--no-test-set", "-m", "model3").stdout
    assert "95 % interval" in table and "only there" not in table and "equally accurate" not in table


def test_two_files_with_one_model_name_are_told_apart_by_path(tmp_path, labelled):
    import shutil

    from edge_infer.formats import evaluation_tables
    from edge_infer.runtime import MODELS_DIR

    copy = tmp_path / "retrained" / "model3.int8.onnx"
    copy.parent.mkdir()
    shutil.copy(MODELS_DIR / "model3.int8.onnx", copy)
    results = json.loads(invoke(str(labelled), "--no-test-set", "-m", "model3", "-m", str(copy), "-m", "model1",
                                "--precision", "int8", "--format", "json").stdout)["results"]
    table = evaluation_tables(results)
    assert f"model3 ({copy})" in table and f"model3/int8 ({copy})" in table
    assert f"model3 ({MODELS_DIR / 'model3.int8.onnx'})" in table
    assert "model1 (" not in table  # a name that is already unique stays short


def test_right_per_file_pairs_answers_with_files_even_when_a_file_is_listed_twice(tmp_path, labelled):
    from edge_infer.classifier import Classifier
    from edge_infer.evaluation.evaluate import evaluate_folder, right_per_file

    rows = (labelled / "labels.csv").read_text().splitlines()
    (labelled / "labels.csv").write_text("\n".join(rows + ["0.png,9,x", "broken.png,1,x"]) + "\n")
    folder = read_labelled_folder(labelled)
    scores = evaluate_folder(Classifier("model3"), folder, "robust")
    right = right_per_file(scores, folder)
    predicted = {p["path"]: p["predicted"] for p in scores["predictions"]}
    expected = [item.name != "broken.png" and predicted[item.name] == label
                for item, label in zip(folder.files, folder.labels)]
    assert right.tolist() == expected and len(right) == 7
    assert right.sum() / len(right) == pytest.approx(scores["accuracy"])


def test_test_set_and_corruptions_on_tiny_data(tmp_path, labelled):
    data = make_dataset(tmp_path / "data", n_train=50, n_test=60)
    result = invoke(str(labelled), "--data-dir", str(data), "--corruption-images", "30", "--corruption", "rotate",
                    "--corruption", "shot_noise", "-m", "model1", "--precision", "fp32", "--precision", "int8",
                    "--format", "json")
    assert result.exit_code == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert [(r["model"], r["precision"]) for r in results] == [("model1", "fp32"), ("model1", "int8")]
    for r in results:
        assert r["clean"]["images"] == 60 and np.array(r["clean"]["confusion_matrix"]).sum() == 60
        suite = r["corruptions"]
        assert suite["images"] == 30 and set(suite["accuracy"]) == {"rotate", "shot_noise"}
        assert set(suite["accuracy"]["rotate"]) == {"1", "2", "3", "4", "5"}
        assert 0 <= suite["mean_corruption_accuracy"] <= 1
    table = invoke(str(labelled), "--data-dir", str(data), "--corruption-images", "10", "--corruption", "rotate",
                   "-m", "model1", "--through-preprocessing")
    assert "rotate" in table.stdout and "clean %" in table.stdout and "Trouser" in table.stdout
    assert "mCA pre %" in table.stdout and "model1/fp32 pre" in table.stdout  # model1's preferred precision


def test_corruptions_through_preprocessing_undo_inversion(tmp_path):
    """Inverted images (light background) are undone by the robust preprocessing, not by the model."""
    from edge_infer import Classifier
    from edge_infer.evaluation.evaluate import evaluate_corruptions

    data = make_dataset(tmp_path / "data", n_train=10, n_test=40)
    from edge_infer.datasets import load_split

    test = load_split("test", data)
    classifier = Classifier("model2")
    bare = evaluate_corruptions(classifier, test.images, test.labels, ["inverse"], severities=(5,))
    cache = {}
    product = evaluate_corruptions(classifier, test.images, test.labels, ["inverse"], severities=(5,), cache=cache,
                                   through_preprocessing=True)
    assert product["through_preprocessing"] and not bare["through_preprocessing"]
    (restored,) = cache.values()
    # fully inverted, a bright bar on black is a dark bar on white: preprocessing makes it bright on black again
    assert (restored.reshape(len(restored), -1).max(1) > 0.5).all()
    assert (restored[:, 0, 0] == 0).all()


@pytest.mark.parametrize("args, message", [
    (["--no-test-set"], "nothing to evaluate"),
    (["--corruption", "melt"], "unknown corruption melt"),
])
def test_usage_errors(args, message):
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.stderr


def test_missing_test_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    result = invoke("--data-dir", str(tmp_path))
    assert result.exit_code == 2 and "apt-get install dataset-fashion-mnist" in result.stderr


def test_folder_without_labels(tmp_path):
    with pytest.raises(LabelsError, match="no labels.csv"):
        read_labelled_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("file,class_index\na.png,12\n")
    with pytest.raises(LabelsError, match="class_index 12"):
        read_labelled_folder(tmp_path)
    result = invoke(str(tmp_path), "--no-test-set")
    assert result.exit_code == 2 and "labels.csv" in result.stderr


def test_mirror_average_is_recorded_and_labelled(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=50, n_test=40)
    result = invoke("--data-dir", str(data), "--corruption-images", "0", "-m", "model1", "--mirror-average",
                    "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["mirror_average"] is True
    table = invoke("--data-dir", str(data), "--corruption-images", "0", "-m", "model1", "--mirror-average")
    assert "fp32+mirror" in table.stdout
