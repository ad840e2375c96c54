"""Training: the study's parameter counts, and a one-epoch run of every builder on tiny data."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from train import data as train_data  # noqa: E402
from train.models import REGISTRY  # noqa: E402

pytestmark = [pytest.mark.train]


@pytest.mark.parametrize("name, params", [("model1", 50_394), ("model2", 225_034), ("model3", 56_778)])
def test_study_models_match_the_study_parameter_counts(name, params):
    assert REGISTRY[name].build().count_params() == params
    assert REGISTRY[name].recipe.study_params == params


def test_robust_fits_the_budget_and_is_edge_friendly():
    model = REGISTRY["robust"].build()
    assert model.count_params() <= 300_000
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert "Flatten" not in kinds and "GlobalAveragePooling2D" in kinds
    for i, kind in enumerate(kinds):  # Conv -> BatchNorm -> ReLU, so the batch-norm folds
        if kind == "Conv2D":
            assert kinds[i + 1 : i + 3] == ["BatchNormalization", "ReLU"]
    assert "RandomFlip" not in kinds  # augmentation lives in the data pipeline, not the graph


def test_validation_split_is_seeded_and_disjoint():
    a_train, a_val = train_data.split_validation(100, 20, seed=3)
    b_train, b_val = train_data.split_validation(100, 20, seed=3)
    assert np.array_equal(a_val, b_val) and len(np.intersect1d(a_train, a_val)) == 0
    assert len(a_train) + len(a_val) == 100


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REGISTRY))
def test_one_epoch_writes_a_complete_run(name, tiny_dataset, tmp_path):
    from train.fit import train_model

    out = tmp_path / name
    run = train_model(name, out, epochs=1, data_dir=tiny_dataset, cache_dir=None, workers=1, verbose=0,
                      allow_download=False)
    assert (out / "model.keras").is_file() and (out / "curves.png").is_file()
    history = json.loads((out / "history.json").read_text())
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert len(history[key]) == 1, key
    saved = json.loads((out / "run.json").read_text())
    assert saved == json.loads(json.dumps(run))
    assert saved["params"] == REGISTRY[name].build().count_params()
    assert saved["seed"] == 0 and saved["epochs_run"] == 1 and 0.0 <= saved["test_accuracy"] <= 1.0
    assert set(saved["data_checksums"]) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    photos = saved["photos"]["samples"] if saved["photos"] else 0  # robust mixes in the committed photo pool
    assert saved["validation_images"] + saved["train_images"] - photos == 300


@pytest.mark.slow
def test_cli_trains_all_and_draws_the_comparison(tiny_dataset, tmp_path):
    from train.__main__ import main

    runs = tmp_path / "runs"
    assert main(["--model", "all", "--epochs", "1", "--data-dir", str(tiny_dataset), "--out",
                 str(runs), "--quiet", "--no-download"]) == 0
    assert (runs / "comparison.png").is_file()
    assert sorted(p.name for p in runs.iterdir() if p.is_dir() and p.name != ".cache") == sorted(REGISTRY)


def test_missing_data_is_one_clear_error_and_leaves_no_run_folder(tmp_path, capsys, monkeypatch):
    from train.__main__ import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert main(["--model", "model1", "--data-dir", str(tmp_path / "empty"), "--no-download"]) == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_users_labelled_photos_are_mixed_into_training(tiny_dataset, tmp_path):
    from train.__main__ import main

    from .scenes import garment_on_floor

    photos = tmp_path / "my_photos"
    photos.mkdir()
    for i in range(6):
        garment_on_floor(seed=i).save(photos / f"{i}.jpg")
    (photos / "labels.csv").write_text("file,class_index\n" + "".join(f"{i}.jpg,{i % 2}\n" for i in range(6)))
    out = tmp_path / "with_photos"
    assert main(["--model", "robust", "--epochs", "1", "--data-dir", str(tiny_dataset), "--out", str(out),
                 "--widths", "8,8,8", "--photos", str(photos), "--footwear-pairs", "0.5", "--quiet",
                 "--no-download"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["recipe"]["footwear_pairs"] == 0.5
    assert len(list((tmp_path / ".cache").glob("roundtrip-*-pair-1-*.npy"))) == 1  # the pairs were rendered
    assert run["photos"]["photos"] == 6 and run["photos"]["per_class"][:2] == [3, 3]
    assert run["photos"]["samples"] == 6 * 10  # three photos a class, repeated up to the cap of 10
    assert run["train_images"] == 240 + 60
    assert (tmp_path / ".cache").is_dir()  # the round-trip cache follows --out


@pytest.mark.slow
def test_ablation_overrides_are_applied_and_recorded(tiny_dataset, tmp_path):
    from train.__main__ import main

    out = tmp_path / "ablation"
    assert main(["--model", "robust", "--epochs", "1", "--data-dir", str(tiny_dataset), "--out", str(out),
                 "--augment", "basic", "--vertical-flip", "--heavy-fraction", "0.5", "--widths", "8,16,24",
                 "--corruption-mix", "0.5", "--corruption-mix-classes", "0,trouser,Dress", "--block", "separable", "--photos", "none", "--quiet",
                 "--no-download"]) == 0
    run = json.loads((out / "run.json").read_text())
    recipe = run["recipe"]
    assert recipe["augment"] == "basic" and recipe["vertical_flip"] is True and recipe["heavy_fraction"] == 0.5
    assert recipe["corruption_mix"] == 0.5 and recipe["corruption_mix_classes"] == [0, 1, 3]
    assert recipe["widths"] == [8, 16, 24] and recipe["photos"] is None and run["photos"] is None
    assert recipe["block"] == "separable" and run["summary"].endswith("(variant: separable blocks; widths 8,16,24)")
    assert run["params"] == REGISTRY["robust"].build(widths=(8, 16, 24), block="separable").count_params()
    assert run["params"] < REGISTRY["robust"].build(widths=(8, 16, 24)).count_params() < 20_000


@pytest.mark.slow
def test_a_stopped_run_resumes_where_it_stopped(tiny_dataset, tmp_path, monkeypatch, capsys):
    import keras

    from train import checkpoint, fit
    from train.__main__ import main

    args = ["--model", "robust", "--epochs", "3", "--data-dir", str(tiny_dataset), "--widths", "8,8,8",
            "--augment", "basic", "--photos", "none", "--quiet", "--no-download"]
    whole, out = tmp_path / "whole", tmp_path / "stopped"
    assert main([*args, "--out", str(whole)]) == 0
    assert not (whole / "resume").exists()  # a finished run keeps no checkpoint

    class CtrlC(keras.callbacks.Callback):  # what a user's Ctrl-C does during the second epoch
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    callbacks = fit._callbacks
    monkeypatch.setattr(fit, "_callbacks", lambda *a: callbacks(*a) + [CtrlC()])
    assert main([*args, "--out", str(out)]) == 0
    monkeypatch.setattr(fit, "_callbacks", callbacks)
    stopped = json.loads((out / "run.json").read_text())
    assert stopped["stopped_early"] and stopped["epochs_run"] == 1 and stopped["resumed"] == []

    # what was kept: the model after epoch 1 with its optimizer (2 steps of 128 of the 240
    # training images), momentum and bfloat16 policy, and the best weights
    state = json.loads((out / "resume" / "state.json").read_text())
    kept = checkpoint.load(out, state["identity"])
    assert kept.epochs_done == 1 and int(kept.model.optimizer.iterations.numpy()) == 2
    momentum = [v for v in kept.model.optimizer.variables if "momentum" in v.path]
    assert momentum and any(np.abs(keras.ops.convert_to_numpy(v)).sum() > 0 for v in momentum)
    assert {layer.dtype_policy.name for layer in kept.model.layers if layer.weights} == {"mixed_bfloat16"}
    assert (out / "resume" / kept.best_file).is_file()

    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 2  # a fresh run would overwrite it
    assert "holds an unfinished run (1 of 3 epochs): continue it with --resume" in capsys.readouterr().err
    assert main([*args, "--out", str(out), "--resume", "--epochs", "4", "--seed", "4"]) == 2
    assert "started with other options or data: epochs 3 (now 4); seed 0 (now 4)" in capsys.readouterr().err

    assert main([*args, "--out", str(out), "--resume"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["epochs_run"] == 3 and not run["stopped_early"] and [r["epoch"] for r in run["resumed"]] == [1]
    history = json.loads((out / "history.json").read_text())
    uninterrupted = json.loads((whole / "history.json").read_text())
    # the optimizer's step count went on where it stopped, so the schedule did too (mid-cosine at epoch 2)
    assert history["learning_rate"] == pytest.approx(uninterrupted["learning_rate"])
    assert 0 < history["learning_rate"][1] < max(history["learning_rate"])
    assert run["best_val_accuracy"] == max(history["val_accuracy"]) and len(history["val_accuracy"]) == 3
    assert (out / "best.weights.h5").is_file() and not (out / "resume").exists()
    assert main([*args, "--out", str(out), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_one_training_process_per_run_folder(tmp_path):
    from train import checkpoint

    with checkpoint.exclusive(tmp_path):
        with pytest.raises(checkpoint.ResumeError, match="another training process is writing"):
            with checkpoint.exclusive(tmp_path):
                pass
    with checkpoint.exclusive(tmp_path):  # free again once the first one is done
        pass


def test_the_epochs_after_a_break_draw_a_stream_no_other_run_draws():
    from train.checkpoint import pipeline_seed

    assert pipeline_seed(0, 0) == 0 and pipeline_seed(7, 0) == 7  # a fresh run is unchanged
    assert pipeline_seed(0, 3) not in {pipeline_seed(3, 0), pipeline_seed(0, 4), pipeline_seed(1, 3)}


@pytest.mark.parametrize("args, message", [
    (["--model", "model1", "--widths", "8,16"], "--widths applies to the robust model only"),
    (["--model", "robust", "--widths", "8,x"], "argument --widths"),
    (["--model", "robust", "--heavy-fraction", "1.5"], "--heavy-fraction must be between 0 and 1"),
    (["--model", "robust", "--corruption-mix", "-0.1"], "--corruption-mix must be between 0 and 1"),
    (["--model", "robust", "--photos-fraction", "0"], "--photos-fraction must be above 0"),
    (["--model", "model2", "--block", "separable"], "--block applies to the robust model only"),
    (["--model", "robust", "--block", "dense"], "argument --block"),
    (["--model", "robust", "--corruption-mix-classes", "0,Hat"], "argument --corruption-mix-classes"),
    (["--model", "all", "--resume"], "--resume continues one model's run"),
    (["--model", "robust", "--corruption-mix-classes", "10"], "argument --corruption-mix-classes"),
    (["--model", "robust", "--corruption-mix-classes", "0,1"], "needs corruption mixing"),  # no mixing to limit
    (["--model", "robust", "--teacher-weight", "0.5"], "--teacher-weight needs --teacher"),
    (["--model", "robust", "--teacher", "t", "--teacher-weight", "1.5"], "--teacher-weight must be above 0"),
    (["--model", "all", "--teacher", "t"], "--teacher applies to one model"),
    (["--model", "robust", "--footwear-pairs", "2"], "--footwear-pairs must be between 0 and 1"),
    (["--model", "robust", "--augment", "basic", "--footwear-pairs", "0.5"], "--footwear-pairs needs the photo"),
    (["--model", "model2", "--footwear-pairs", "0.5"], "--footwear-pairs needs the photo"),
    (["--model", "all", "--footwear-pairs", "0.5"], "--footwear-pairs applies to one model"),
])
def test_bad_options_are_usage_errors(args, message, capsys):
    from train.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    error_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2 and message in error_line  # the "error:" line, not the usage above it


def test_augmentation_eases_over_the_last_epochs():
    import tensorflow as tf

    from train.fit import AugmentSchedule

    schedule = AugmentSchedule(tf.Variable(1.0), epochs=50, final=0.25)
    values = [schedule.value(epoch) for epoch in range(50)]
    assert values[:35] == [1.0] * 35
    assert values[-1] == pytest.approx(0.25)
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert AugmentSchedule(tf.Variable(1.0), epochs=1, final=0.25).value(0) == 1.0


def test_light_images_only_move_and_lose_patches_heavy_ones_change_tone():
    import tensorflow as tf

    from train.augment import augment_batch

    tf.random.set_seed(0)
    grey = tf.fill([64, 28, 28, 1], 0.5)
    centre = slice(6, 22)  # beyond the reach of a 2 px shift's black fill

    def tones(heavy):
        out = augment_batch(grey, strength=1.0, heavy=tf.fill([64], heavy)).numpy()[:, centre, centre]
        return np.unique(np.round(out, 4))

    assert set(tones(False)) <= {0.0, 0.5}  # flip, shift, erasing: the grey itself is untouched
    assert len(tones(True)) > 10  # blur, noise, contrast and brightness make new tones

    mixed = augment_batch(grey, strength=1.0, heavy=tf.range(64) % 2 == 0).numpy()[:, centre, centre]
    changed = [not set(np.unique(np.round(image, 4))) <= {0.0, 0.5} for image in mixed]
    assert not any(changed[1::2]) and sum(changed[0::2]) > 8  # decided image by image (about half change)


@pytest.mark.parametrize("heavy_fraction, photo_share", [(1.0, 0.3), (0.5, 0.3), (0.2, 0.2), (0.0, 0.0)])
def test_round_trip_photos_go_only_to_heavy_images(heavy_fraction, photo_share):
    from train.augment import ROUNDTRIP_PROBABILITY, training_dataset

    assert ROUNDTRIP_PROBABILITY == 0.3
    n = 4000
    clean = np.zeros((n, 28, 28, 1), np.float32)
    photos = np.ones((n, 28, 28, 1), np.float32)  # a marker: all-white "photos"
    data = training_dataset(clean, np.zeros(n, np.int64), 500, seed=0, num_classes=10, roundtrip=photos,
                            heavy_fraction=heavy_fraction)
    images = np.concatenate([batch.numpy() for batch, _ in data])  # not augmented: markers survive
    assert len(images) == n
    assert (images.mean(axis=(1, 2, 3)) == 1).mean() == pytest.approx(photo_share, abs=0.03)


def test_soft_targets_mix_the_teachers_mean_into_the_labels():
    import tensorflow as tf

    from train.distill import soft_targets

    labels = tf.constant([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    first = tf.constant([[0.6, 0.4, 0.0], [0.2, 0.2, 0.6]])
    second = tf.constant([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], dtype=tf.bfloat16)  # exact in bfloat16; cast
    targets = soft_targets(labels, [first, second], teacher_weight=0.5).numpy()
    np.testing.assert_allclose(targets, [[0.9, 0.1, 0.0], [0.05, 0.175, 0.775]], atol=1e-6)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(soft_targets(labels, [first], teacher_weight=1.0).numpy(), first.numpy())


@pytest.mark.slow
def test_a_distilled_run_learns_from_its_teachers_and_records_them(tiny_dataset, tmp_path, monkeypatch, capsys):
    import hashlib

    import keras

    from train import distill
    from train.__main__ import main

    common = ["--model", "robust", "--epochs", "1", "--data-dir", str(tiny_dataset), "--widths", "8,8,8",
              "--photos", "none", "--quiet", "--no-download"]
    assert main([*common, "--out", str(tmp_path / "teacher")]) == 0
    taught = []  # the training batches really go through the teachers
    original = distill.with_teachers
    monkeypatch.setattr(distill, "with_teachers",
                        lambda dataset, models, weight: taught.append((len(models), weight)) or original(dataset, models, weight))
    assert main([*common, "--out", str(tmp_path / "student"), "--teacher", str(tmp_path / "teacher"),
                 "--teacher", str(tmp_path / "teacher" / "model.keras"), "--teacher-weight", "0.5"]) == 0
    assert taught == [(2, 0.5)]
    # a teacher inside the folder the run writes to would be overwritten: refused
    assert main([*common, "--out", str(tmp_path / "teacher"), "--teacher", str(tmp_path / "teacher")]) == 2
    assert "inside the output folder" in capsys.readouterr().err
    run = json.loads((tmp_path / "student" / "run.json").read_text())
    digest = hashlib.sha256((tmp_path / "teacher" / "model.keras").read_bytes()).hexdigest()
    assert [t["sha256"] for t in run["teachers"]] == [digest, digest]
    assert run["recipe"]["teacher_weight"] == 0.5 and len(run["recipe"]["teachers"]) == 2

    # the batches the student learns from carry the teacher's answers on those very images
    teacher = distill.load_teachers([tmp_path / "teacher"], (28, 28, 1), 10).models[0]
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    labels = keras.utils.to_categorical([0, 1, 2, 3], 10)
    import tensorflow as tf

    batches = distill.with_teachers(tf.data.Dataset.from_tensors((images, labels)), [teacher], 0.5)
    seen, targets = next(iter(batches))
    expected = 0.5 * labels + 0.5 * teacher(images, training=False).numpy()
    np.testing.assert_allclose(targets.numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(seen.numpy(), images)


def test_bfloat16_teachers_answer_like_their_float32_originals(tmp_path):
    import keras

    from train import distill

    model = REGISTRY["robust"].build(widths=(8, 8, 8))
    model.save(tmp_path / "model.keras")
    exact, fast = (distill.load_teachers([tmp_path], (28, 28, 1), 10, bfloat16=b).models[0] for b in (False, True))
    images = np.random.default_rng(1).random((16, 28, 28, 1), dtype=np.float32)
    answers = exact(images, training=False).numpy()
    quick = fast(images, training=False)
    assert quick.dtype == "float32" and fast.layers[1].dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(quick), answers, rtol=0.05, atol=1e-4)


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "nowhere", "no such model file"),
    (lambda tmp: (tmp / "junk.keras").write_bytes(b"not a zip") and tmp / "junk.keras", "cannot be loaded"),
])
def test_a_bad_teacher_is_one_clear_error_before_anything_is_written(make, message, tiny_dataset, tmp_path, capsys):
    from train.__main__ import main

    teacher = make(tmp_path)
    out = tmp_path / "student"
    assert main(["--model", "robust", "--epochs", "1", "--data-dir", str(tiny_dataset), "--out", str(out),
                 "--teacher", str(teacher), "--photos", "none", "--quiet", "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: teacher ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_teacher_of_another_shape_is_refused(tmp_path):
    from train import distill

    REGISTRY["model1"].build().save(tmp_path / "model.keras")
    with pytest.raises(distill.TeacherError, match="takes"):
        distill.load_teachers([tmp_path], (32, 32, 3), 10)


def test_a_teacher_that_answers_logits_is_refused(tmp_path):
    import keras

    from train import distill

    inputs = keras.Input((28, 28, 1))
    logits = keras.layers.Dense(10)(keras.layers.Flatten()(inputs))  # no softmax
    keras.Model(inputs, logits).save(tmp_path / "model.keras")
    with pytest.raises(distill.TeacherError, match="probabilities"):
        distill.load_teachers([tmp_path], (28, 28, 1), 10)


def test_shipped_models_and_onnx_files_teach_through_onnxruntime(tmp_path):
    import tensorflow as tf

    from edge_infer.runtime import MODELS_DIR, OnnxModel, sha256_file
    from train import distill

    teachers = distill.load_teachers(["model3", MODELS_DIR / "model1.int8.onnx"], (28, 28, 1), 10)
    assert teachers.records == [
        {"file": str(MODELS_DIR / "model3.onnx"), "sha256": sha256_file(MODELS_DIR / "model3.onnx")},  # a name: fp32
        {"file": str(MODELS_DIR / "model1.int8.onnx"), "sha256": sha256_file(MODELS_DIR / "model1.int8.onnx")}]
    images = np.random.default_rng(2).random((6, 28, 28, 1), dtype=np.float32)
    labels = np.eye(10, dtype=np.float32)[[0, 1, 2, 3, 4, 5]]
    batches = distill.with_teachers(tf.data.Dataset.from_tensors((images, labels)), teachers.models, 0.75)
    _, targets = next(iter(batches))
    mean = (OnnxModel("model3", "fp32").predict_batched(images) + OnnxModel("model1", "int8").predict_batched(images)) / 2
    np.testing.assert_allclose(targets.numpy(), 0.25 * labels + 0.75 * mean, atol=1e-6)

    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(distill.TeacherError, match=r"^teacher .*broken.onnx: onnxruntime cannot load it"):
        distill.load_teachers([tmp_path / "broken.onnx"], (28, 28, 1), 10)
    with pytest.raises(distill.TeacherError, match="no such model file"):
        distill.load_teachers(["no-such-model"], (28, 28, 1), 10)
