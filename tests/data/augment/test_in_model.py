"""Augmentation inside the model (on the accelerator): the same transforms as the pipeline's, per
image."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
from keras import ops

from gender_cls.config import AugmentConfig, ModelConfig
from gender_cls.data.augment.geometry import affine_matrix
from gender_cls.data.augment.in_model import (
    RandomAugment,
    resolve_placement,
    warp_batch,
    with_augmentation,
)
from gender_cls.data.images import warp_image
from gender_cls.models.classifier import build_classifier

GEOMETRY = AugmentConfig(rotation_range=25, zoom_range=0.2, shear_range=10,
                         width_shift_range=0.1, height_shift_range=3, horizontal_flip=False)  # fmt: skip


def layer(config: AugmentConfig, seed: int = 0) -> RandomAugment:
    return RandomAugment(dataclasses.asdict(config), seed)


def images(batch: int = 4, size: int = 24) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (batch, size, size, 3)).astype("float32")


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "wrap", "constant"])
def test_the_warp_samples_like_opencv(fill_mode):
    image = np.random.default_rng(1).uniform(0, 255, (32, 40, 3)).astype("float32")
    matrix = affine_matrix(32, 40, angle_deg=20, zoom_x=1.4, zoom_y=0.9, shear_deg=8,
                           shift_x=2.5, shift_y=-1.5, flip=True)  # fmt: skip
    ours = ops.convert_to_numpy(warp_batch(image[None], matrix.reshape(1, 6), fill_mode))[0]
    np.testing.assert_allclose(ours, warp_image(image, matrix, fill_mode), atol=0.05)


def test_the_drawn_transform_is_the_one_affine_matrix_composes(monkeypatch):
    # Every draw at the top of its range: the layer's matrix must be affine_matrix's.
    monkeypatch.setattr(
        RandomAugment, "_uniform", lambda self, batch, low, high: ops.full((batch,), high)
    )
    transforms = ops.convert_to_numpy(layer(GEOMETRY)._transforms(2, 24, 30))
    expected = affine_matrix(24, 30, angle_deg=25, zoom_x=1.2, zoom_y=1.2, shear_deg=10,
                             shift_x=3.0, shift_y=3.0)  # fmt: skip
    for row in transforms:
        np.testing.assert_allclose(row.reshape(2, 3), expected, rtol=1e-5, atol=1e-4)


def test_identity_outside_training_and_random_per_image_in_training():
    x = images()
    augment = layer(dataclasses.replace(GEOMETRY, brightness_range=(0.5, 1.5), contrast_range=0.3))
    np.testing.assert_array_equal(ops.convert_to_numpy(augment(x, training=False)), x)
    out = ops.convert_to_numpy(augment(x, training=True))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    changes = [np.abs(out[i] - x[i]).mean() for i in range(len(x))]
    assert min(changes) > 1 and len(set(np.round(changes, 3))) == len(x)  # each image its own draw


def test_flip_only_mirrors_some_images_and_leaves_the_rest():
    x = images(16)
    flip = dataclasses.replace(AugmentConfig.off(), horizontal_flip=True)
    out = ops.convert_to_numpy(layer(flip)(x, training=True))
    flipped = [np.allclose(out[i], x[i, :, ::-1], atol=1e-3) for i in range(len(x))]
    kept = [np.allclose(out[i], x[i], atol=1e-3) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)


def test_vertical_flip_mirrors_upside_down():
    x = images(16)
    flip = dataclasses.replace(AugmentConfig.off(), vertical_flip=True)
    out = ops.convert_to_numpy(layer(flip)(x, training=True))
    flipped = [np.allclose(out[i], x[i, ::-1], atol=1e-3) for i in range(len(x))]
    kept = [np.allclose(out[i], x[i], atol=1e-3) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)


def test_same_seed_same_augmentation():
    x = images()
    first = ops.convert_to_numpy(layer(GEOMETRY, seed=7)(x, training=True))
    again = ops.convert_to_numpy(layer(GEOMETRY, seed=7)(x, training=True))
    np.testing.assert_array_equal(first, again)


def test_wrapper_shares_the_classifier_and_predicts_like_it():
    model = build_classifier(ModelConfig(weights="none", alpha=0.35), 2, 32)
    wrapper = with_augmentation(model, GEOMETRY, seed=0)
    x = images(2, 32)
    np.testing.assert_allclose(wrapper.predict(x, verbose=0), model.predict(x, verbose=0))
    assert {id(w) for w in model.weights} <= {id(w) for w in wrapper.weights}


def test_placement(monkeypatch):
    import tensorflow as tf

    assert resolve_placement("gpu", AugmentConfig()) == "gpu"
    assert resolve_placement("cpu", AugmentConfig()) == "cpu"
    assert resolve_placement("gpu", AugmentConfig.off()) == "cpu"  # nothing to augment
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert resolve_placement("auto", AugmentConfig()) == "cpu"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"])
    assert resolve_placement("auto", AugmentConfig()) == "gpu"


@pytest.mark.parametrize("jit", [False, True])
def test_a_training_step_through_the_augmentation(jit):
    # XLA: affine_transform would fail here. Without: a [:, i, None, None] slice of the
    # transforms once broke at run time in the graph ("Incompatible shapes: [24,24] vs. [4]").
    inputs = keras.Input((24, 24, 3))
    outputs = keras.layers.Dense(1, "sigmoid")(keras.layers.GlobalAveragePooling2D()(inputs))
    everything = dataclasses.replace(GEOMETRY, brightness_range=(0.8, 1.2), contrast_range=0.2)
    wrapper = with_augmentation(keras.Model(inputs, outputs), everything, seed=0)
    wrapper.compile("adam", "binary_crossentropy", jit_compile=jit)
    loss = wrapper.train_on_batch(images(), np.ones((4, 1), "float32"))
    assert np.isfinite(loss)
