"""The validation report: calibration first, then the threshold."""

from __future__ import annotations

from gender_cls.metrics.classification import validation_report
from tests.helpers import over_confident


def test_validation_report_calibrates_then_tunes_the_threshold():
    y, p = over_confident(seed=1)
    report = validation_report(y, p, ["female", "male"], "f1", calibrate=True)
    calibration = report["calibration"]
    assert report["temperature"] > 1.5 and calibration["ece_after"] < calibration["ece_before"]
    assert 0 < report["threshold"] < 1 and "at_threshold" in report
    assert validation_report(y, p, ["female", "male"], "f1")["temperature"] == 1.0
