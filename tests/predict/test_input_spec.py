"""The input spec of bare models: layouts, scaling presets, logits."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.predict.input_spec import InputSpec, is_channels_first, look_like_probabilities
from gender_cls.predict.predictor import Predictor
from tests.helpers import WEIGHTS, nchw_onnx

MEAN, STD = (120.0, 110.0, 100.0), 50.0


MEAN, STD = (120.0, 110.0, 100.0), 50.0


def expected_probabilities(images: np.ndarray, bgr: bool = False) -> np.ndarray:
    x = (images.astype(np.float64) - MEAN) / STD
    features = x.mean(axis=(1, 2))
    if bgr:
        features = features[:, ::-1]
    logits = features @ WEIGHTS
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def colour_images(size: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (6, size, size, 3)).astype(np.float32)
    images[0, ..., 0], images[1, ..., 2] = 255, 255  # a red one, a blue one
    return images


def tiny_keras(path, activation):
    import keras

    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(1, activation=activation,
                                                 kernel_initializer="ones")])  # fmt: skip
    model.save(path)
    return path


def test_a_channels_first_onnx_model_with_mean_std_and_logits(tmp_path):
    path = nchw_onnx(tmp_path / "gender.onnx")
    predictor = Predictor(path, input_mean=MEAN, input_std=(STD,))
    assert predictor.input.channels_first and predictor.image_size == 8
    assert predictor.class_names == ["class_0", "class_1"] and predictor.logits
    (line,) = predictor.assumptions
    assert "channels first" in line and "(pixels - 120,110,100) / 50" in line
    assert "outputs logits" in line and "numbered" in line
    images = colour_images()
    np.testing.assert_allclose(predictor.predict_arrays(images), expected_probabilities(images),
                               atol=1e-5)  # fmt: skip
    bgr = Predictor(path, input_mean=MEAN, input_std=(STD,), bgr=True)
    np.testing.assert_allclose(bgr.predict_arrays(images), expected_probabilities(images, True),
                               atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("activation, logits", [("sigmoid", False), (None, True)])
def test_one_output_bare_model_is_female_male_and_logits_are_seen(tmp_path, activation, logits):
    predictor = Predictor(tiny_keras(tmp_path / "model_balanced.keras", activation))
    assert predictor.class_names == ["female", "male"] and predictor.binary
    assert predictor.logits is logits
    (line,) = predictor.assumptions
    assert "female, male (assumed: pass --classes if not)" in line and "pixels /255" in line
    p = predictor.predict_arrays(np.full((1, 16, 16, 3), 255.0, np.float32))
    np.testing.assert_allclose(p[0, 1], 1 / (1 + np.exp(-3.0)), atol=1e-5)  # ones @ 3 channels
    given = Predictor(tmp_path / "model_balanced.keras", output="probabilities")
    assert not given.logits and "judged" not in given.assumptions[0]


def test_input_spec_presets_and_checks():
    from gender_cls.errors import UserError

    x = np.full((1, 2, 2, 3), 255.0, np.float32)
    assert InputSpec.build("unit").apply(x).max() == 1.0
    imagenet = InputSpec.build("imagenet").apply(x)[0, 0, 0]
    np.testing.assert_allclose(imagenet, (1 - np.array([0.485, 0.456, 0.406]))
                               / np.array([0.229, 0.224, 0.225]), rtol=1e-4)  # fmt: skip
    assert InputSpec.build("raw", channels_first=True).apply(x).shape == (1, 3, 2, 2)
    with pytest.raises(UserError, match="one value or three"):
        InputSpec.build("raw", mean=(1, 2))
    assert is_channels_first((None, 3, 32, 32)) and not is_channels_first((None, 32, 32, 3))
    assert look_like_probabilities(np.array([[0.2, 0.8]]))
    assert not look_like_probabilities(np.array([[0.2, 0.3]]))
    assert not look_like_probabilities(np.array([[1.7]]))
