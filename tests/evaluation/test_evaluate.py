"""evaluate(): metrics against scikit-learn, thresholds, tune_on, the model's face crop."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn import metrics as skm

from gender_cls.evaluation.evaluate import evaluate
from gender_cls.evaluation.result import write_outputs
from gender_cls.metrics.thresholds import tune_threshold
from gender_cls.predict.predictor import Predictor


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
def test_evaluation_applies_the_models_face_crop_without_a_flag(face_run, face_data, tmp_path):
    from gender_cls.evaluation.evaluate import evaluate

    run = face_run[0].run_dir
    test = face_data / "test"
    cropped = evaluate(run, test, face_cache=tmp_path / "cache")
    assert cropped.metrics["face_crop"] == {"detector": "blazeface", "margin": 0.25,
                                            "template": "arcface", "found": 8, "no_face": 1,
                                            "fallback": "full"}  # fmt: skip
    assert cropped.metrics["images"] == 9 and str(test / "female" / "blank.png") in cropped.paths
    skipped = evaluate(run, test, face_cache=tmp_path / "cache", face_fallback="skip")
    assert skipped.metrics["images"] == 8
    assert "1 without a face (left out) and not in the figures above" in skipped.full_report()
    write_outputs(skipped, tmp_path / "out")
    assert (tmp_path / "out" / "no_face_found.txt").read_text().strip().endswith("blank.png")
    plain = evaluate(run, test, face_crop=False)
    assert "face_crop" not in plain.metrics and plain.metrics["images"] == 9


@pytest.mark.slow
@pytest.mark.parametrize("how", ["keras", "tflite"])  # tf.data; chunks (as TTA and Ray)
def test_a_file_that_breaks_after_the_check_is_its_own_error_and_the_rest_are_measured(
    exported_run, two_class_data, tmp_path, monkeypatch, how
):
    """Between check_readable and prediction one file is truncated and one deleted, as by
    another process: each is skipped with its reason, and the figures are those of the rest
    (this ended in scikit-learn's "inconsistent numbers of samples", with no outputs)."""
    import shutil

    from gender_cls.evaluation import evaluate as evaluation

    data = tmp_path / "test"
    shutil.copytree(two_class_data / "test", data)
    doomed = sorted(data.rglob("*.png"))[:2]
    real_check = evaluation.check_readable

    def check_then_break(index):
        checked = real_check(index)
        doomed[0].write_bytes(doomed[0].read_bytes()[:60])
        doomed[1].unlink()
        return checked

    monkeypatch.setattr(evaluation, "check_readable", check_then_break)
    model = exported_run / ("model.tflite" if how == "tflite" else "model.keras")
    result = evaluate(model, data)
    total = len(list((two_class_data / "test").rglob("*.png")))
    assert len(result.paths) == len(result.y_true) == len(result.probabilities) == total - 2
    assert not np.isnan(result.probabilities).any()
    assert {path for path, _ in result.skipped} == {str(p) for p in doomed}
    assert result.metrics["images"] == total - 2 and result.metrics["skipped_unreadable"] == 2
    reasons = dict(result.skipped)
    assert "No such file" in reasons[str(doomed[1])]
    result.write(tmp_path / "out")
    assert (tmp_path / "out" / "metrics.json").is_file()
