"""Export: recorded in the card, and predicting as Keras does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gender_cls.predict.predictor import Predictor

pytestmark = pytest.mark.slow  # every test here trains or exports a model


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_export_is_recorded_and_matches_keras(exported_run, fmt):
    meta = json.loads((exported_run / "model.json").read_text())
    record = meta["exports"][fmt]
    assert (exported_run / record["file"]).is_file()
    assert record["max_abs_diff_vs_keras"] < 1e-3


@pytest.mark.parametrize("backend", ["tflite", "onnx"])
def test_exported_and_keras_predict_the_same(exported_run, two_class_data, backend):
    folder = [str(two_class_data / "test")]
    exported = Predictor(exported_run, backend=backend).predict_paths(folder)
    keras_ = Predictor(exported_run, backend="keras").predict_paths(folder)
    assert [p.label for p in exported] == [p.label for p in keras_]
    np.testing.assert_allclose([p.confidence for p in exported], [p.confidence for p in keras_],
                               atol=1e-3)  # fmt: skip
