"""Calibration: ECE and Brier on known cases, temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.metrics.calibration import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from tests.helpers import over_confident


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
