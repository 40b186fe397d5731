"""Augmentation in the tf.data pipeline: colour effects, determinism, resize folded into the
warp."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from gender_cls.config import AugmentConfig
from gender_cls.data.augment.geometry import has_geometry
from gender_cls.data.augment.in_pipeline import augment_image, augment_op
from tests.helpers import random_image

OFF = AugmentConfig.off()


FULL = AugmentConfig(
    rotation_range=30,
    zoom_range=0.3,
    shear_range=20,
    width_shift_range=0.2,
    height_shift_range=0.2,
    horizontal_flip=True,
    brightness_range=(0.5, 1.5),
    contrast_range=0.5,
)


def test_identity_config_changes_nothing():
    config = AugmentConfig.off()
    assert config.is_identity and not has_geometry(config)
    image = random_image()
    np.testing.assert_array_equal(augment_image(image, config, seed=1), image)


def test_augmentation_keeps_shape_dtype_and_changes_pixels():
    image = random_image(24)
    out = augment_op(FULL)(tf.constant(image), tf.constant(3, tf.int64))
    assert out.shape == image.shape and out.dtype == tf.uint8
    assert not np.array_equal(out.numpy(), image)


def test_brightness_and_contrast_saturate():
    image = np.full((8, 8, 3), 200, np.uint8)
    bright = AugmentConfig.off()
    bright.brightness_range = (2.0, 2.0)
    assert augment_image(image, bright, 0).min() == 255
    flat = AugmentConfig.off()
    flat.contrast_range = 0.9
    assert np.allclose(augment_image(image, flat, 0), 200, atol=1)  # uniform image: no contrast


def test_same_seed_same_augmentation():
    image = random_image()
    a, b, c = (augment_image(image, FULL, s) for s in (5, 5, 7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_resize_folded_into_the_warp_matches_a_plain_resize():
    import cv2

    image = np.random.default_rng(2).integers(0, 256, (40, 60, 3)).astype(np.uint8)
    image = cv2.GaussianBlur(image, (5, 5), 2)  # smooth, so interpolations agree closely
    folded = augment_image(image, AugmentConfig.off(), seed=0, size=20)
    plain = cv2.resize(image, (20, 20), interpolation=cv2.INTER_LINEAR)
    assert folded.shape == (20, 20, 3)
    assert np.abs(folded.astype(int) - plain.astype(int)).mean() < 3


def test_colour_effects_are_drawn_only_when_set():
    image = random_image(32)
    for config in (
        AugmentConfig.off(),
        replace(OFF, saturation_range=0.5),
        replace(OFF, grayscale_probability=1.0),
        replace(OFF, blur_sigma=2.0),
        replace(OFF, jpeg_quality=20),
    ):
        out = augment_image(image, config, seed=5)
        assert out.shape == image.shape and out.dtype == np.uint8
        changed = not np.array_equal(out, image)
        assert changed == config.has_photo_effects


def test_grey_stays_grey_under_saturation_and_hue_and_greyscale_is_grey():
    grey = np.repeat(random_image(16)[..., :1], 3, axis=2)
    config = replace(OFF, saturation_range=0.9, hue_range=90)
    np.testing.assert_array_equal(augment_image(grey, config, seed=1), grey)
    greyed = augment_image(random_image(16), AugmentConfig(grayscale_probability=1.0), seed=2)
    assert np.array_equal(greyed[..., 0], greyed[..., 1]) and np.array_equal(greyed[..., 1],
                                                                          greyed[..., 2])  # fmt: skip


def test_blur_smooths_and_jpeg_stays_close():
    image = random_image(32)
    blurred = augment_image(image, replace(OFF, blur_sigma=3.0),
                            seed=4)  # fmt: skip
    assert blurred.astype(float).std() < image.astype(float).std()
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (32, 1, 3))
    jpeg = augment_image(smooth, replace(OFF, jpeg_quality=30),
                         seed=4)  # fmt: skip
    assert 0 < np.abs(jpeg.astype(int) - smooth).mean() < 8


def test_colour_effects_refuse_the_in_model_placement():
    from gender_cls.data.augment.in_model import resolve_placement
    from gender_cls.errors import UserError

    config = AugmentConfig(jpeg_quality=50)
    assert resolve_placement("auto", config) == "cpu"
    with pytest.raises(UserError, match="run in the input pipeline only"):
        resolve_placement("gpu", config)
