"""Training end to end: phases, artifacts, learning, resume after SIGKILL, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import tiny_config

from gender_cls.cli import train_command
from gender_cls.config import ModelConfig, RunConfig, TrainConfig
from gender_cls.training import plan_phases, read_history, train

REPO = Path(__file__).resolve().parents[1]
TINY = ["--weights", "none", "--alpha", "0.35", "--image_size", "64", "--no_augment"]


def test_phase_plan():
    scratch = plan_phases(RunConfig(model=ModelConfig(weights="none")))
    assert [p.name for p in scratch] == ["scratch"]
    two = plan_phases(RunConfig(train=TrainConfig(fine_tune_epochs=3, fine_tune_layers="12")))
    assert [(p.name, p.unfreeze) for p in two] == [("head", None), ("fine_tune", "12")]
    assert two[1].lr == 1e-5
    skipped = RunConfig(train=TrainConfig(fine_tune_epochs=3, fine_tune_layers="0"))
    assert [p.name for p in plan_phases(skipped)] == ["head"]


@pytest.mark.slow
def test_two_class_run_learns_and_writes_the_run_directory(trained_run):
    run = trained_run.run_dir
    for name in ("model.keras", "model.json", "history.csv", "config.json", "split.json",
                 "training_plots/accuracy_curve.png", "training_plots/loss_curve.png",
                 "checkpoints/best.keras", "model.tflite"):  # fmt: skip
        assert (run / name).is_file(), name
    temp_files = [p.name for p in run.rglob(".*") if p.name != ".lock"]
    assert temp_files == []  # every file was written under a temp name, then renamed
    meta = json.loads((run / "model.json").read_text())
    assert meta["exports"]["tflite"]["max_abs_diff_vs_keras"] < 1e-4
    assert trained_run.card.exports.keys() == {"tflite"}
    assert meta["class_names"] == ["female", "male"] and meta["image_size"] == 64
    assert 0.0 < meta["threshold"] < 1.0
    assert meta["validation"]["at_threshold"]["accuracy"] > 0.8  # chance is 0.5
    assert len(read_history(run / "history.csv")["loss"]) == 8


@pytest.mark.slow
def test_saved_run_model_predicts_raw_pixels(trained_run, two_class_data):
    model = keras.saving.load_model(trained_run.run_dir / "model.keras")
    from gender_cls.images import load_image

    paths = sorted((two_class_data / "test" / "male").glob("*.png"))[:4]
    pixels = np.stack([load_image(p, 64) for p in paths])
    assert (model.predict(pixels, verbose=0) > 0.5).mean() >= 0.75


@pytest.mark.slow
def test_two_phases_with_a_local_pretrained_base_augmenting_in_the_model(
    two_class_data, tmp_path, trained_run
):
    from gender_cls.config import AugmentConfig
    from gender_cls.models import get_base

    base_weights = tmp_path / "base.weights.h5"
    get_base(keras.saving.load_model(trained_run.run_dir / "model.keras")).save_weights(
        base_weights
    )
    config = tiny_config(two_class_data, tmp_path / "ft", head_epochs=2, fine_tune_epochs=2,
                         fine_tune_layers="10", export="onnx")  # fmt: skip
    config.model.weights = str(base_weights)
    config.augment, config.train.augment_on = AugmentConfig(brightness_range=(0.8, 1.2)), "gpu"
    result = train(config, output_model=str(tmp_path / "models" / "model_new.h5"), verbose=0)
    assert result.phase2_start == 2
    assert len(result.history["loss"]) == 4
    for saved in (result.model_path, tmp_path / "ft" / "checkpoints" / "best.keras"):
        model = keras.saving.load_model(saved)  # safe mode, no custom objects: no augment layer
        assert "augment" not in [layer.name for layer in model.layers]
    for name in ("model_new.h5", "model_new.json", "model_new.onnx", "../ft/model.onnx"):
        assert (tmp_path / "models" / name).is_file(), name
    card = json.loads((tmp_path / "models" / "model_new.json").read_text())
    assert card["exports"]["onnx"]["file"] == "model_new.onnx"


@pytest.mark.slow
def test_killed_run_resumes_and_completes(two_class_data, tmp_path):
    run = tmp_path / "killed"
    args = [sys.executable, str(REPO / "train_model.py"), "--data_path", str(two_class_data),
            "--output_dir", str(run), "--epochs", "10", "--patience", "100", "--batch_size", "8",
            *TINY]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 3:  # 2 epochs logged
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "model.keras").exists()
    newest = sorted((run / "checkpoints").glob("backup_*/epoch-*.weights.h5"))[-1]
    newest.write_bytes(newest.read_bytes()[:1000])  # as if the kill came mid-save

    resumed = subprocess.run([*args[:2], "--output_dir", str(run), "--resume"], env=env,
                             capture_output=True, text=True, timeout=400)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    epochs = [line.split(",")[0] for line in history.read_text().splitlines()[1:]]
    assert sorted(set(map(int, epochs))) == list(range(10))
    assert len(read_history(history)["loss"]) == 10
    assert (run / "model.keras").is_file() and (run / "model.json").is_file()
    assert "cannot be restored" in resumed.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backbone", "resnet9000"], "unknown backbone 'resnet9000'"),
        (
            ["--fine_tune_layers", "5000", "--weights", "imagenet_missing.h5"],
            "weights file not found",
        ),
        (["--data_path", "/no/such/folder"], "/no/such/folder: data folder not found"),
        (["--output_model", "models/mine"], "models/mine: name a .keras"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(two_class_data, tmp_path, extra, message):
    args = ["--data_path", str(two_class_data), "--output_dir", str(tmp_path / "r"), *extra]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_output_dir_holding_another_run_is_refused(trained_run, two_class_data):
    args = ["--data_path", str(two_class_data), "--output_dir", str(trained_run.run_dir), *TINY]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 2
    assert "already holds a run" in result.output and "--overwrite" in result.output


@pytest.mark.slow
def test_fine_tune_layers_larger_than_the_base(two_class_data, tmp_path):
    config = tiny_config(two_class_data, tmp_path / "r", head_epochs=1, fine_tune_epochs=1,
                         fine_tune_layers="5000")  # fmt: skip
    config.model.weights = "imagenet"
    from gender_cls.errors import UserError
    from gender_cls.training import _prepare_layers

    with pytest.raises(UserError, match="larger than the base"):
        from gender_cls.models import build_classifier

        config.model.weights = "none"
        _prepare_layers(build_classifier(config.model, 2, 32), plan_phases(
            RunConfig(train=config.train))[1])  # fmt: skip


def test_mixed_precision_builds_float16_compute_with_a_float32_output(monkeypatch):
    import tensorflow as tf

    from gender_cls.models import build_classifier, precision_policy

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"])
    with precision_policy(True):
        model = build_classifier(ModelConfig(weights="none", alpha=0.35), 2, 32)
    assert model.get_layer("pool").compute_dtype == "float16"
    assert model.get_layer("output").compute_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored


def test_mixed_precision_is_ignored_without_a_gpu(monkeypatch, caplog):
    import tensorflow as tf

    from gender_cls.models import precision_policy

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    with precision_policy(True):
        assert keras.mixed_precision.global_policy().name == "float32"
    assert "no GPU" in caplog.text


def test_multi_class_validation_report_uses_argmax():
    from types import SimpleNamespace

    from gender_cls.training import validation_report

    scores = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    index = SimpleNamespace(num_classes=3, class_names=["down", "left", "up"],
                            splits={"val": SimpleNamespace(labels=[0, 1, 2, 2])})  # fmt: skip
    model = SimpleNamespace(predict=lambda ds, verbose=0: scores)
    report = validation_report(model, index, None, TrainConfig())
    assert report["threshold"] is None and report["temperature"] == 1.0
    assert report["argmax"]["accuracy"] == 0.75
    assert report["argmax"]["roc_auc"] is not None


def test_optimizer_options_build_the_stated_keras_optimizers():
    from gender_cls.training import Phase, make_optimizer

    head = Phase("head", 5, 1e-3, None)
    adamw = make_optimizer(TrainConfig(optimizer="adamw", weight_decay=0.05), head, 10)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.05
    sgd = make_optimizer(TrainConfig(optimizer="sgd", ema=True), head, 10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9
    assert sgd.use_ema and not make_optimizer(TrainConfig(), head, 10).use_ema
    plain = make_optimizer(TrainConfig(), head, 10)
    assert type(plain) is keras.optimizers.Adam and plain.weight_decay is None
    assert float(plain.learning_rate) == pytest.approx(1e-3)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    from gender_cls.training import Phase, make_optimizer

    phase = Phase("scratch", 12, 0.01, "all", True, schedule="cosine")
    optimizer = make_optimizer(TrainConfig(warmup_epochs=2), phase, 10)
    schedule = optimizer._learning_rate  # Keras keeps the schedule object here
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    lr = [float(schedule(step)) for step in (0, 10, 20, 70, 120)]
    assert lr[0] == 0.0 and lr[1] == pytest.approx(0.005) and lr[2] == pytest.approx(0.01)
    assert lr[2] > lr[3] > lr[4] and lr[4] == pytest.approx(0.0, abs=1e-9)


def test_auto_settings_differ_from_scratch_and_pretrained_and_yield_to_given_ones():
    scratch = plan_phases(RunConfig(model=ModelConfig(weights="none")))[0]
    assert (scratch.lr, scratch.schedule, scratch.monitor, scratch.patience) == (
        3e-3,
        "cosine",
        "val_accuracy",
        10,
    )
    head, tune = plan_phases(RunConfig(train=TrainConfig(fine_tune_epochs=2)))
    assert (head.lr, head.schedule, head.monitor, head.patience) == (1e-3, "plateau", "val_loss", 5)
    assert (tune.lr, tune.schedule) == (1e-5, "plateau")
    given = TrainConfig(lr=0.02, schedule="plateau", monitor="val_loss", patience=3)
    mine = plan_phases(RunConfig(model=ModelConfig(weights="none"), train=given))[0]
    assert (mine.lr, mine.schedule, mine.monitor, mine.patience) == (0.02, "plateau", "val_loss", 3)


def test_the_phase_chooses_the_callbacks(tmp_path):
    from gender_cls.training import Phase, make_callbacks

    kinds = lambda cbs: [type(c).__name__ for c in cbs]  # noqa: E731
    plateau = Phase("scratch", 5, 1e-3, "all", True, "plateau", "val_accuracy", 4)
    callbacks = make_callbacks(tmp_path, plateau, TrainConfig(), None)
    assert "ReduceLROnPlateau" in kinds(callbacks)
    stopper = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
    assert (stopper.monitor, stopper.mode, stopper.patience) == ("val_accuracy", "max", 4)
    cosine = Phase("scratch", 5, 1e-3, "all", True, "cosine", "val_accuracy", 10)
    callbacks = make_callbacks(tmp_path, cosine, TrainConfig(ema=True), None)
    assert "ReduceLROnPlateau" not in kinds(callbacks)
    assert kinds(callbacks)[:3] == ["TerminateOnNaN", "SwapEMAWeights", "EarlyStopping"]


def test_mixup_blends_images_and_targets(two_class_data):
    from gender_cls.data import discover
    from gender_cls.pipeline import make_dataset, mixup

    split = discover(two_class_data).splits["train"]
    plain = make_dataset(split, 2, 64, 16, training=True, seed=3)
    mixed = mixup(plain, 0.4, seed=3)
    x, y = next(iter(mixed))
    assert x.dtype == "float32" and x.shape == (16, 64, 64, 3)
    soft = (y.numpy() > 0.01) & (y.numpy() < 0.99)
    assert soft.any()  # some targets are blends, not 0/1


@pytest.mark.slow
def test_a_run_with_every_recipe_option_trains(two_class_data, tmp_path):
    from gender_cls.config import AugmentConfig

    config = tiny_config(two_class_data, tmp_path / "run", head_epochs=2, optimizer="adamw",
                         schedule="cosine", ema=True, mixup=0.2, tensorboard=True,
                         calibrate=True)  # fmt: skip
    config.augment = AugmentConfig(saturation_range=0.3, hue_range=10, grayscale_probability=0.2,
                                   blur_sigma=1.0, jpeg_quality=40)  # fmt: skip
    result = train(config, verbose=0)
    assert len(result.history["loss"]) == 2 and result.card.config.train.mixup == 0.2
    assert list((tmp_path / "run" / "logs").rglob("events.out.tfevents.*"))  # TensorBoard wrote
    calibration = result.card.validation["calibration"]
    assert result.card.temperature == result.card.validation["temperature"] > 0
    assert calibration["ece_after"] <= calibration["ece_before"] + 1e-9


def test_a_flip_that_would_swap_left_and_right_is_refused(tmp_path):
    from gender_cls.datasets import make_direction_dataset
    from gender_cls.errors import UserError

    data = make_direction_dataset(tmp_path / "direction", n_per_class=8, size=32)
    config = tiny_config(data, tmp_path / "run")
    config.augment.horizontal_flip = True
    with pytest.raises(UserError, match="'left' and 'right' swap .* pass --no-horizontal_flip"):
        train(config, verbose=0)
    config.augment.horizontal_flip, config.augment.vertical_flip = False, True
    with pytest.raises(UserError, match="'up' and 'down' swap .* pass --no-vertical_flip"):
        train(config, verbose=0)


def test_offline_imagenet_fails_first_and_leaves_no_run_directory(tmp_path, monkeypatch):
    import urllib.error

    from gender_cls.errors import UserError

    def offline(*_args, **_kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # an empty weights cache
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", offline)
    data = tmp_path / "data" / "train"
    for name in ("female", "male"):
        (data / name).mkdir(parents=True)
        (data / name / "broken.jpg").write_text("not an image")  # reading it would fail
    config = tiny_config(tmp_path / "data", tmp_path / "run")
    config.model.weights = "imagenet"
    with pytest.raises(UserError, match=r"ImageNet weights .* copy it into ~/.keras/models/"):
        train(config, verbose=0)
    assert not (tmp_path / "run").exists()


def test_a_run_that_fails_before_its_first_epoch_leaves_the_folder_as_it_was(tmp_path):
    from gender_cls.datasets import make_direction_dataset
    from gender_cls.errors import UserError

    data = make_direction_dataset(tmp_path / "direction", n_per_class=8, size=32)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("kept")
    config = tiny_config(data, out)
    config.augment.horizontal_flip = True
    with pytest.raises(UserError, match="swap under a horizontal flip"):
        train(config, verbose=0)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_the_phase_line_names_the_epoch_whose_weights_were_kept(caplog):
    from gender_cls.training import Phase, _log_phase, kept_epoch

    history = {"val_loss": [0.6, 0.4, 0.5], "val_accuracy": [0.7, 0.8, 0.9]}
    assert kept_epoch(history, "val_loss") == 1 and kept_epoch(history, "val_accuracy") == 2
    assert kept_epoch({}, "val_loss") is None
    with caplog.at_level("INFO", logger="gender_cls.training"):
        _log_phase(Phase("head", 3, 1e-3, None, monitor="val_loss"), history, 5, 8, 12.0)
    assert "epochs 6-8 in 12s" in caplog.text
    assert "kept epoch 7 (best val_loss): val_loss 0.4000, val_accuracy 0.8000" in caplog.text


def test_a_failed_export_after_training_is_a_warning(tmp_path, monkeypatch, caplog):
    from gender_cls.artifacts import ModelCard
    from gender_cls.training import export_saved

    def broken(*_args, **_kwargs):
        raise RuntimeError("converter crashed\nlong trace")

    monkeypatch.setattr("gender_cls.export.export_model", broken)
    card = ModelCard(class_names=["female", "male"], image_size=8)
    with caplog.at_level("WARNING", logger="gender_cls.training"):
        assert export_saved([tmp_path / "model.keras"], "tflite", tmp_path, card) == []
    assert "tflite export failed (converter crashed); the Keras model is saved" in caplog.text


def test_an_output_folder_that_cannot_be_made_is_one_line_and_exit_2(two_class_data, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    args = ["--data_path", str(two_class_data), "--weights", "none", "--output_dir",
            str(blocker / "run")]  # fmt: skip
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 2, result.output
    assert f"error: {blocker / 'run'}: Not a directory; check that this path" in result.output
    assert "Traceback" not in result.output and blocker.read_text() == "in the way"


@pytest.mark.slow
def test_an_overwrite_that_fails_keeps_the_old_run_and_one_that_succeeds_replaces_all_of_it(
    trained_run, two_class_data, tmp_path
):
    import shutil

    from click.testing import CliRunner

    from gender_cls.cli import train_command

    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    (run / "model.onnx").write_bytes(b"an export of the old model")

    def files() -> dict:
        return {p.relative_to(run): p.read_bytes() for p in run.rglob("*")
                if p.is_file() and p.name != ".lock"}  # fmt: skip

    before = files()
    broken = tmp_path / "broken"
    for name in ("female", "male"):
        (broken / name).mkdir(parents=True)
        (broken / name / "a.jpg").write_text("not an image")
    args = ["--output_dir", str(run), "--overwrite", "--weights", "none", "--alpha", "0.35",
            "--image_size", "64", "--epochs", "1", "--no_augment", "--export", "tflite"]  # fmt: skip
    failed = CliRunner().invoke(train_command, ["--data_path", str(broken), *args])
    assert failed.exit_code == 2, failed.output
    assert files() == before
    done = CliRunner().invoke(train_command, ["--data_path", str(two_class_data), *args])
    assert done.exit_code == 0, done.output
    assert not (run / "model.onnx").exists()  # the old run's export went with it
    assert json.loads((run / "model.json").read_text())["epochs_trained"] == 1
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [".lock"]
    assert str(run / "model.keras") in done.output


def test_resume_rechecks_the_split_and_a_damaged_split_file_is_one_line(tmp_path):
    from conftest import make_image_tree

    from gender_cls.data import DatasetIndex, discover
    from gender_cls.errors import UserError
    from gender_cls.training import _load_index

    data = make_image_tree(tmp_path / "data", {"female": 3, "male": 3})
    run = tmp_path / "run"
    run.mkdir()
    config = tiny_config(data, run)
    index = _load_index(config, run, resume=False)  # writes split.json
    assert DatasetIndex.load(run / "split.json").class_names == index.class_names
    for path in discover(str(data), 0.34, 0).splits["train"].paths:
        Path(path).write_text("no longer an image")
    with pytest.raises(UserError, match="no readable"):
        _load_index(config, run, resume=True)
    (run / "split.json").write_text('{"root": "data", "splits": {"tra')
    with pytest.raises(UserError, match=r"split.json: not a readable split file"):
        _load_index(config, run, resume=True)
