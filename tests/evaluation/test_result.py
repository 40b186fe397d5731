"""The files of an evaluation: every one written and valid, misclassified images, hostile and non-
UTF-8 names."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from PIL import Image

from gender_cls.evaluation.evaluate import evaluate
from gender_cls.evaluation.result import write_outputs


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


def test_hostile_class_and_file_names_stay_inside_the_output_and_escaped():
    from gender_cls.atomic import safe_name

    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_name(".hidden") == "hidden" and safe_name("") == "_"
    assert safe_name("<b>male</b> 91%.png") == "_b_male__b__91_.png"


@pytest.mark.slow
def test_file_names_that_are_not_utf8_are_evaluated_and_written(trained_run, two_class_data,
                                                                 tmp_path):  # fmt: skip
    import os

    from gender_cls.evaluation.evaluate import evaluate
    from gender_cls.evaluation.result import write_outputs

    data = tmp_path / "data"
    for label in ("female", "male"):
        (data / label).mkdir(parents=True)
        for i, image in enumerate(sorted((two_class_data / "test" / label).glob("*.png"))[:3]):
            shutil.copy(image, os.fsencode(data / label) + f"/bad\xff{i}.png".encode("latin-1"))
    result = evaluate(trained_run.run_dir, data)
    write_outputs(result, tmp_path / "out")
    rows = (tmp_path / "out" / "predictions.csv").read_bytes().splitlines()
    assert len(rows) == 7 and all(b"bad\xff" in row for row in rows[1:])
