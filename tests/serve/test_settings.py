"""What a server runs, typed: settings survive the trip to uvicorn's workers through the
environment, and a model without an export is refused before any worker starts."""

from __future__ import annotations

import shutil

import pytest

from gender_cls.errors import UserError
from gender_cls.serve.settings import (
    SETTINGS_VARIABLE,
    ServeLimits,
    ServeSettings,
    predictor_for,
)


def test_settings_round_trip_through_the_environment(monkeypatch):
    settings = ServeSettings("runs/x", threshold=0.3, tta=2, limits=ServeLimits(max_batch=4))
    monkeypatch.setenv(SETTINGS_VARIABLE, settings.to_json())
    again = ServeSettings.from_environment()
    assert again == settings and isinstance(again.limits, ServeLimits)
    assert ServeSettings.from_json('{"model_path": "m"}') == ServeSettings("m")


@pytest.mark.slow
def test_the_predictor_runs_the_export_and_a_model_without_one_is_refused(trained_run, tmp_path):
    predictor = predictor_for(ServeSettings(str(trained_run.run_dir), threshold=0.25))
    assert predictor.model_file.suffix == ".keras" and predictor.threshold == 0.25
    assert type(predictor.runner).__name__ == "LiteRunner"  # the run's TFLite export
    bare = shutil.copytree(trained_run.run_dir, tmp_path / "run")
    (bare / "model.tflite").unlink()
    with pytest.raises(UserError, match="serve runs an exported model"):
        predictor_for(ServeSettings(str(bare)))
