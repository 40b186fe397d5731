"""Recalibration as a library call: the temperature fitted on the run's validation split, the
threshold re-tuned for the metric asked, and models without a run refused in one line."""

from __future__ import annotations

import shutil

import keras
import pytest

from gender_cls.artifacts.card import resolve_model
from gender_cls.errors import UserError
from gender_cls.evaluation.recalibrate import calibrate_model


@pytest.mark.slow
def test_the_card_gets_the_report_of_the_calibrated_validation_split(trained_run, tmp_path):
    run = shutil.copytree(trained_run.run_dir, tmp_path / "run")
    report = calibrate_model(run, "balanced_accuracy", backend="keras")
    card = resolve_model(run).card
    assert card.temperature == report["temperature"] > 0
    assert card.threshold == report["threshold"] and "balanced_accuracy" in card.threshold_source
    assert card.validation == report
    assert report["calibration"]["ece_after"] <= report["calibration"]["ece_before"] + 1e-9


@pytest.mark.slow
def test_a_model_without_its_run_is_refused_by_name(trained_run, tmp_path):
    bare = tmp_path / "bare.keras"
    keras.saving.load_model(trained_run.run_dir / "model.keras", compile=False).save(bare)
    with pytest.raises(UserError, match=f"{bare}: calibration needs a model trained by gender_cls"):
        calibrate_model(bare)
