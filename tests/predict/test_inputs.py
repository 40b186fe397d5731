"""Input loading: exported models predict in bounded chunks with the same results."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.predict.predictor import Predictor

pytestmark = pytest.mark.slow  # every test here trains or exports a model


def test_exported_models_predict_in_bounded_chunks_with_the_same_results(
    exported_run, two_class_data, monkeypatch
):
    from gender_cls.predict import inputs

    files = sorted(str(p) for p in (two_class_data / "test").rglob("*.png"))
    predictor = Predictor(exported_run, backend="tflite", tta=2)
    whole = predictor.predict_files(files), predictor.predict_paths(files)
    loaded = []
    real_load = Predictor.load_inputs
    monkeypatch.setattr(inputs, "CHUNK", 5)
    monkeypatch.setattr(Predictor, "load_inputs",
                        lambda self, paths, crop=False: loaded.append(len(paths)) or
                        real_load(self, paths, crop))  # fmt: skip
    chunked = predictor.predict_files(files), predictor.predict_paths(files)
    assert max(loaded) == 5 and sum(loaded) == 2 * len(files)
    np.testing.assert_allclose(chunked[0], whole[0], atol=1e-6)
    assert [p.probabilities for p in chunked[1]] == [p.probabilities for p in whole[1]]
