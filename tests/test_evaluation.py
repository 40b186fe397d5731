"""test_script.py / evaluate(): output files, metrics, thresholds, bare models, bad input."""

from __future__ import annotations

import csv
import json
import shutil

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn import metrics as skm

from gender_cls.cli import evaluate_command
from gender_cls.evaluation import evaluate, write_outputs
from gender_cls.images import load_image
from gender_cls.inference import Predictor
from gender_cls.thresholds import tune_threshold


@pytest.fixture(scope="module")
def evaluated(trained_run, two_class_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    runner = CliRunner()
    args = ["--data_path", str(two_class_data / "test"), "--model_path", str(trained_run.run_dir),
            "--output_dir", str(out)]  # fmt: skip
    result = runner.invoke(evaluate_command, args)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.slow
def test_every_output_file_is_written_and_valid(evaluated):
    out, console = evaluated
    for name in ("confusion_matrix.png", "roc_curve.png", "pr_curve.png", "threshold_curve.png",
                 "reliability_diagram.png"):  # fmt: skip
        with Image.open(out / name) as image:
            assert image.size[0] > 100
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "average_precision",
                "per_class", "threshold", "threshold_source", "confusion_matrix", "counts",
                "model_path", "data_path", "ece", "brier", "temperature"):  # fmt: skip
        assert key in metrics, key
    assert 0 <= metrics["ece"] <= 1 and 0 <= metrics["brier"] <= 1
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 24
    report = (out / "classification_report.txt").read_text()
    assert "female" in report and "macro avg" in report and "at threshold 0.5" in report
    assert "accuracy" in console and "misclassified" in console


@pytest.mark.slow
def test_metrics_agree_with_sklearn_on_the_same_predictions(evaluated):
    out, _ = evaluated
    metrics = json.loads((out / "metrics.json").read_text())
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    y_true = [r["true_label"] for r in rows]
    y_pred = [r["predicted_label"] for r in rows]
    p_male = [float(r["p_male"]) for r in rows]
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert metrics["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    positives = [t == "male" for t in y_true]
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(positives, p_male), abs=1e-5)
    expected = (np.array(p_male) >= metrics["threshold"]).tolist()
    assert [p == "male" for p in y_pred] == expected


@pytest.mark.slow
def test_misclassified_folder_holds_exactly_the_wrong_predictions(trained_run, two_class_data,
                                                                  tmp_path):  # fmt: skip
    result = evaluate(trained_run.run_dir, two_class_data / "test", threshold=0.99)
    write_outputs(result, tmp_path)
    wrong = {(result.class_names[result.y_true[i]], result.class_names[result.y_pred[i]],
              result.paths[i].rsplit("/", 1)[-1]) for i in result.misclassified()}  # fmt: skip
    parts = [f.name.split("_", 4) for f in (tmp_path / "misclassified").iterdir()]
    copied = {(true, pred, name) for true, _as, pred, _confidence, name in parts}
    assert copied == wrong and len(wrong) > 0  # 0.99 forces some male -> female mistakes
    assert (tmp_path / "misclassified.png").is_file()


@pytest.mark.slow
def test_threshold_override_changes_predictions(trained_run, two_class_data):
    low = evaluate(trained_run.run_dir, two_class_data / "test", threshold=0.0)
    high = evaluate(trained_run.run_dir, two_class_data / "test", threshold=1.0)
    assert (low.y_pred == 1).all() and (high.y_pred == 0).sum() >= 23
    assert low.metrics["threshold_source"] == "given on the command line"


@pytest.mark.slow
def test_tune_on_uses_only_the_tuning_folder(trained_run, two_class_data, monkeypatch):
    seen = []
    original = Predictor.predict_files

    def spy(self, paths, verbose=0):
        seen.append(list(paths))
        return original(self, paths, verbose)

    monkeypatch.setattr(Predictor, "predict_files", spy)
    result = evaluate(trained_run.run_dir, two_class_data / "test", tune_on=two_class_data / "val")
    tuning, testing = seen
    assert all("/val/" in p for p in tuning) and all("/test/" in p for p in testing)
    predictor = Predictor(trained_run.run_dir)
    val_probs = original(predictor, tuning)
    labels = [int("/male/" in p) for p in tuning]
    assert result.threshold == pytest.approx(tune_threshold(labels, val_probs[:, 1], "f1"))
    assert "tuned on" in result.threshold_source


@pytest.mark.slow
def test_tune_on_the_test_folder_is_refused(trained_run, two_class_data):
    test = str(two_class_data / "test")
    args = ["--data_path", test, "--model_path", str(trained_run.run_dir), "--tune_on", test]
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 2 and "must not be the test folder" in result.output


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


def test_hostile_class_and_file_names_stay_inside_the_output_and_escaped():
    from gender_cls.atomic import safe_name

    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_name(".hidden") == "hidden" and safe_name("") == "_"
    assert safe_name("<b>male</b> 91%.png") == "_b_male__b__91_.png"


def test_a_batch_size_of_zero_is_refused_by_evaluate_and_predict(tmp_path):
    from click.testing import CliRunner

    from gender_cls.cli import evaluate_command, predict_command

    for command, data in ((evaluate_command, "--data_path"), (predict_command, "--image_path")):
        args = [data, str(tmp_path), "--model_path", str(tmp_path), "--batch_size", "0"]
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output


@pytest.mark.slow
def test_file_names_that_are_not_utf8_are_evaluated_and_written(trained_run, two_class_data,
                                                                 tmp_path):  # fmt: skip
    import os
    import shutil

    from gender_cls.evaluation import evaluate, write_outputs

    data = tmp_path / "data"
    for label in ("female", "male"):
        (data / label).mkdir(parents=True)
        for i, image in enumerate(sorted((two_class_data / "test" / label).glob("*.png"))[:3]):
            shutil.copy(image, os.fsencode(data / label) + f"/bad\xff{i}.png".encode("latin-1"))
    result = evaluate(trained_run.run_dir, data)
    write_outputs(result, tmp_path / "out")
    rows = (tmp_path / "out" / "predictions.csv").read_bytes().splitlines()
    assert len(rows) == 7 and all(b"bad\xff" in row for row in rows[1:])
