"""The learning-rate range test."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.training.lr_finder import lr_range_test, valley


def test_valley_lies_on_the_falling_stretch():
    lrs = list(np.logspace(-6, 0, 60))
    losses = [1.0] * 20 + list(np.linspace(1.0, 0.2, 25)) + list(np.linspace(0.2, 3.0, 15))
    suggestion = valley(lrs, losses)
    assert lrs[20] <= suggestion <= lrs[45]


def test_range_test_restores_the_weights_and_suggests_inside_the_sweep():
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    before = [w.copy() for w in model.get_weights()]
    sweep = lr_range_test(model, ds, "binary_crossentropy", steps=60, start=1e-5, end=10.0)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert 2 < len(sweep.lrs) <= 60 and sweep.lrs[0] == pytest.approx(1e-5)
    assert sweep.lrs[0] <= sweep.suggestion <= sweep.lrs[-1]
    assert np.all(np.diff(sweep.lrs) > 0)
