"""test_script.py / gender-cls evaluate: exit codes, one-line errors, --json, --split, --groups,
exports."""

from __future__ import annotations

import csv
import json
import shutil

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from gender_cls.cli import evaluate_command
from gender_cls.data.images import load_image
from gender_cls.evaluation.evaluate import evaluate

pytestmark = pytest.mark.slow  # every test here trains or exports a model


@pytest.fixture(scope="module")
def bare_h5(two_class_data, tmp_path_factory):
    """A seed-style model: its own /255 scaling outside, a custom loss, saved as bare .h5."""

    def custom_focal(y_true, y_pred):
        return keras.ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))

    model = keras.Sequential([
        keras.Input((64, 64, 3)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile("adam", loss=custom_focal)
    paths = sorted((two_class_data / "train").rglob("*.png"))
    x = np.stack([load_image(p, 64) for p in paths]) / 255.0
    y = np.array([float("/male/" in str(p)) for p in paths])
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path_factory.mktemp("bare") / "model_balanced.h5"
    model.save(path)
    return path, model


@pytest.mark.slow
def test_tune_on_the_test_folder_is_refused(trained_run, two_class_data):
    test = str(two_class_data / "test")
    args = ["--data_path", test, "--model_path", str(trained_run.run_dir), "--tune_on", test]
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 2 and "must not be the test folder" in result.output


def test_bare_h5_with_custom_loss_evaluates_with_stated_assumptions(bare_h5, two_class_data,
                                                                    tmp_path):  # fmt: skip
    path, model = bare_h5
    args = ["--data_path", str(two_class_data / "test"), "--model_path", str(path),
            "--output_dir", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 0, result.output
    assert "assumed: bare model" in result.output and "female, male" in result.output
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    images = np.stack([load_image(r["path"], 64) for r in rows]) / 255.0
    expected = model.predict(images, verbose=0).ravel()
    np.testing.assert_allclose([float(r["p_male"]) for r in rows], expected, atol=1e-4)


def test_bare_model_output_size_must_match_the_classes(bare_h5, two_class_data):
    args = ["--data_path", str(two_class_data / "test"), "--model_path", str(bare_h5[0]),
            "--classes", "a,b,c"]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 2 and "1 output(s) but 3 classes" in result.output


@pytest.mark.slow
def test_class_name_mismatch_lists_both_sets(trained_run, two_class_data, tmp_path):
    test = tmp_path / "test"
    shutil.copytree(two_class_data / "test", test)
    (test / "male").rename(test / "man")
    args = ["--data_path", str(test), "--model_path", str(trained_run.run_dir)]
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 2
    assert "man" in result.output and "female, male" in result.output


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.keras", "model not found"),
    (lambda d: (d / "bad.keras").write_bytes(b"junk") and d / "bad.keras", "not a readable Keras model"),
    (lambda d: (d / "bad.h5").write_bytes(b"junk") and d / "bad.h5", "not a readable Keras model"),
    (lambda d: d, "no model.keras in this folder"),
])  # fmt: skip
def test_missing_or_corrupt_model_is_one_line_exit_2(two_class_data, tmp_path, make, message):
    args = ["--data_path", str(two_class_data / "test"), "--model_path", str(make(tmp_path))]
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_empty_test_folder_is_exit_2(trained_run, tmp_path):
    (tmp_path / "empty").mkdir()
    args = ["--data_path", str(tmp_path / "empty"), "--model_path", str(trained_run.run_dir)]
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 2 and "no class folders" in result.output


@pytest.mark.slow
def test_threshold_metric_picks_what_tune_on_maximises(trained_run, two_class_data, tmp_path):
    args = ["--data_path", str(two_class_data / "test"), "--model_path", str(trained_run.run_dir),
            "--tune-on", str(two_class_data / "val"), "--threshold-metric", "youden",
            "--output_dir", str(tmp_path), "--json"]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 0, result.output
    source = json.loads(result.stdout)["threshold_source"]
    assert source == f"tuned on {two_class_data / 'val'} to maximise youden"


@pytest.mark.slow
def test_split_evaluates_the_runs_own_images(trained_run, two_class_data, tmp_path):
    own = evaluate(trained_run.run_dir, split="test")
    folder = evaluate(trained_run.run_dir, two_class_data / "test")
    assert own.paths == folder.paths and own.metrics["accuracy"] == folder.metrics["accuracy"]
    assert own.metrics["data_path"].endswith("split.json:test")
    val = evaluate(trained_run.run_dir, split="val")
    assert sorted(val.paths) == sorted(str(p) for p in (two_class_data / "val").rglob("*.png"))
    args = ["--split", "val", "--model_path", str(trained_run.run_dir), "--output_dir",
            str(tmp_path / "out"), "--json"]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 0 and json.loads(result.stdout)["images"] == len(val.paths)
    both = CliRunner().invoke(evaluate_command, [*args, "--data_path", str(two_class_data)])
    assert both.exit_code == 2 and "either --data_path" in both.output
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(trained_run.run_dir / "model.keras", lone)
    shutil.copy(trained_run.run_dir / "model.json", lone)
    missing = CliRunner().invoke(evaluate_command, ["--split", "val", "--model_path", str(lone)])
    assert missing.exit_code == 2 and "split.json: not found" in missing.output


@pytest.mark.slow
def test_unwritable_output_dir_is_one_line_and_keeps_what_is_there(trained_run, two_class_data,
                                                                   tmp_path):  # fmt: skip
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    args = ["--data_path", str(two_class_data / "test"), "--model_path",
            str(trained_run.run_dir), "--output_dir", str(blocker / "eval")]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 2 and "Not a directory; check that this path" in result.output
    assert "Traceback" not in result.output and blocker.read_text() == "in the way"


def test_a_batch_size_of_zero_is_refused_by_evaluate_and_predict(tmp_path):
    from click.testing import CliRunner

    from gender_cls.cli import evaluate_command, predict_command

    for command, data in ((evaluate_command, "--data_path"), (predict_command, "--image_path")):
        args = [data, str(tmp_path), "--model_path", str(tmp_path), "--batch_size", "0"]
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output


@pytest.mark.parametrize("name", ["model.tflite", "model.onnx"])
def test_an_exported_file_evaluates_directly(exported_run, two_class_data, tmp_path, name):
    args = ["--data_path", str(two_class_data / "test"), "--output_dir", str(tmp_path),
            "--model_path", str(exported_run / name), "--json"]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == 24


@pytest.mark.slow
def test_groups_option_writes_the_report_chart_and_metrics(trained_run, two_class_data, tmp_path):
    from gender_cls.cli import evaluate_command

    test = two_class_data / "test"
    rows = ["path,half"] + [f"{p.name},{'first' if i % 2 else 'second'}"
                            for i, p in enumerate(sorted(test.rglob("*.png")))]  # fmt: skip
    (tmp_path / "groups.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    args = ["--data_path", str(test), "--model_path", str(trained_run.run_dir),
            "--output_dir", str(out), "--groups", str(tmp_path / "groups.csv")]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    half = metrics["groups"]["half"]["groups"]
    assert half["first"]["count"] + half["second"]["count"] == 24
    assert (out / "groups_half.png").is_file()
    assert "largest accuracy gap" in (out / "fairness_report.txt").read_text()
    missing = CliRunner().invoke(evaluate_command, [*args[:-1], str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "groups file not found" in missing.output
