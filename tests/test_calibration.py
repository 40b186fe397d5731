"""ECE, Brier score, temperature scaling, and calibration in training and evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.calibration import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from gender_cls.metrics import validation_report


def over_confident(n: int = 2000, seed: int = 0):
    """Labels and two-column probabilities of a model that is right 80% of the time but says
    97%: logits of a calibrated model, multiplied by 3."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p_true = rng.beta(8, 2, n)  # calibrated confidence in the true class, mean 0.8
    correct = rng.uniform(size=n) < p_true
    p_positive = np.where(correct == (y == 1), p_true, 1 - p_true)
    logit = np.log(p_positive / (1 - p_positive)) * 3
    p = 1 / (1 + np.exp(-logit))
    return y, np.stack([1 - p, p], axis=1)


def test_ece_and_brier_of_known_cases():
    y = np.array([1, 0, 1, 0])
    perfect = np.array([[0, 1], [1, 0], [0, 1], [1, 0]], float)
    assert expected_calibration_error(y, perfect) == 0 and brier_score(y, perfect) == 0
    wrong_but_sure = 1 - perfect  # every prediction wrong, with confidence 1
    assert expected_calibration_error(y, wrong_but_sure) == pytest.approx(1.0)
    half = np.full((4, 2), 0.5)
    assert brier_score(y, half) == pytest.approx(0.25)
    table = reliability_bins(y, half)
    assert table["count"].sum() == 4 and table["accuracy"][7] == 0.5  # all in bin [0.47, 0.53)


def test_temperature_scaling_lowers_the_ece_of_an_over_confident_model():
    y, p = over_confident()
    temperature = fit_temperature(y, p)
    assert 2.0 < temperature < 4.5  # the logits were multiplied by 3
    before = expected_calibration_error(y, p)
    after = expected_calibration_error(y, apply_temperature(p, temperature))
    assert before > 0.1 and after < before / 3
    np.testing.assert_array_equal(apply_temperature(p, 1.0), p)
    assert (apply_temperature(p, temperature).argmax(1) == p.argmax(1)).all()  # ranks kept


def test_validation_report_calibrates_then_tunes_the_threshold():
    y, p = over_confident(seed=1)
    report = validation_report(y, p, ["female", "male"], "f1", calibrate=True)
    calibration = report["calibration"]
    assert report["temperature"] > 1.5 and calibration["ece_after"] < calibration["ece_before"]
    assert 0 < report["threshold"] < 1 and "at_threshold" in report
    assert validation_report(y, p, ["female", "male"], "f1")["temperature"] == 1.0


@pytest.mark.slow
def test_calibrate_command_stores_the_temperature_beside_and_inside(trained_run, tmp_path):
    import shutil

    from click.testing import CliRunner

    from gender_cls.artifacts import embedded_card, resolve_model
    from gender_cls.cli import calibrate_command
    from gender_cls.inference import Predictor

    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)  # the session's run stays as it is
    result = CliRunner().invoke(calibrate_command, ["--model_path", str(run)])
    assert result.exit_code == 0, result.output
    assert "temperature" in result.output and "ECE" in result.output
    card = resolve_model(run).card
    inside = embedded_card(run / "model.keras")
    assert card.temperature != 1.0 and inside.temperature == card.temperature
    assert inside.threshold == card.threshold and "calibrated" in card.threshold_source
    images = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    raw = Predictor(run, calibrated=False).predict_arrays(images)
    np.testing.assert_allclose(Predictor(run).predict_arrays(images),
                               apply_temperature(raw, card.temperature), atol=1e-9)  # fmt: skip
