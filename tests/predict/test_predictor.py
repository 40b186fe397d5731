"""The Predictor: thresholds, arrays against paths, precision settings, a lone model file."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from gender_cls.data.images import load_image
from gender_cls.predict.input_spec import InputSpec
from gender_cls.predict.predictor import Predictor


@pytest.mark.slow
def test_threshold_override_flips_labels(trained_run, two_class_data):
    folder = str(two_class_data / "test" / "female")
    predictor = Predictor(trained_run.run_dir, threshold=0.0)
    assert {p.label for p in predictor.predict_paths([folder])} == {"male"}


@pytest.mark.slow
def test_predict_arrays_matches_predict_paths(trained_run, two_class_data):
    paths = sorted((two_class_data / "test" / "male").glob("*.png"))[:3]
    predictor = Predictor(trained_run.run_dir)
    from_arrays = predictor.predict_arrays(np.stack([load_image(p, 64) for p in paths]))
    from_paths = predictor.predict_paths(paths)
    np.testing.assert_allclose(from_arrays[:, 1], [p.probabilities["male"] for p in from_paths],
                               atol=1e-5)  # fmt: skip


@pytest.mark.slow
def test_mixed_precision_and_jit_prediction_match_float32(trained_run, two_class_data, monkeypatch):
    import tensorflow as tf

    folder = [str(two_class_data / "test")]
    plain = Predictor(trained_run.run_dir).predict_paths(folder)
    jit = Predictor(trained_run.run_dir, jit=True)
    assert jit.runner.model.jit_compile is True
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"])
    mixed = Predictor(trained_run.run_dir, mixed_precision=True)
    monkeypatch.undo()
    assert mixed.runner.model.get_layer("pool").compute_dtype == "float16"
    assert mixed.runner.model.get_layer("output").compute_dtype == "float32"
    for other in (jit.predict_paths(folder), mixed.predict_paths(folder)):
        np.testing.assert_allclose([p.confidence for p in other], [p.confidence for p in plain],
                                   atol=2e-2)  # fmt: skip


@pytest.mark.slow
def test_mixed_precision_needs_a_gender_cls_model(trained_run, tmp_path):
    import keras

    from gender_cls.errors import UserError

    bare = tmp_path / "bare.keras"  # saved by Keras alone: no card inside
    keras.saving.load_model(trained_run.run_dir / "model.keras", compile=False).save(bare)
    with pytest.raises(UserError, match="--mixed_precision needs a model trained by gender_cls"):
        Predictor(bare, classes=["female", "male"], mixed_precision=True)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_lone_model_file_predicts_exactly_like_its_run(trained_run, two_class_data, tmp_path,
                                                         suffix):  # fmt: skip
    import keras

    from gender_cls.artifacts.card import resolve_model, save_artifact

    run = resolve_model(trained_run.run_dir)
    card = dataclasses.replace(run.card, threshold=0.37, threshold_source="tuned")  # not 0.5
    model = keras.saving.load_model(run.file, compile=False)
    saved, beside = save_artifact(model, card, tmp_path / f"run{suffix}")
    lone = tmp_path / "elsewhere" / f"model_balanced{suffix}"  # renamed, without its .json
    lone.parent.mkdir()
    shutil.copy(saved, lone)
    assert beside.is_file() and not lone.with_suffix(".json").exists()
    folder = str(two_class_data / "test")
    with_json = Predictor(saved, backend="keras").predict_paths([folder])
    alone = Predictor(lone, backend="keras")
    assert alone.assumptions == [] and alone.threshold == 0.37 and alone.input == InputSpec()
    got = alone.predict_paths([folder])
    assert [p.label for p in got] == [p.label for p in with_json]
    np.testing.assert_allclose([p.probabilities["male"] for p in got],
                               [p.probabilities["male"] for p in with_json], atol=1e-6)  # fmt: skip


def test_keras_settings_pick_the_keras_model():
    from gender_cls.predict.runners import keras_if_asked

    assert keras_if_asked("auto", False, None) == "auto"
    assert keras_if_asked("auto", True, None) == "keras"
    assert keras_if_asked("auto", False, False) == "keras"
    assert keras_if_asked("tflite", False, True) == "tflite"  # open_runner then says it is wrong
