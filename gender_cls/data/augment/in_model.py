"""Augmentation inside the training model, so it runs on the accelerator (`--augment_on gpu`).

The same composed affine warp and photometric changes as the OpenCV path (`augment.py`), drawn
per image with keras.random. The warp is a bilinear gather written in keras.ops rather than
keras.ops.image.affine_transform: on TensorFlow 2.21 that op has no XLA kernel, so `--jit` would
fail (tensorflow/tensorflow#100865); the gather compiles, and samples borders as OpenCV does.
The layer only wraps the classifier while it trains; the saved model never contains it.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import keras
import tensorflow as tf
from keras import ops

from gender_cls.config import AUGMENT_PLACEMENTS, AugmentConfig
from gender_cls.data.augment.geometry import affine_coefficients, has_geometry, shift_pixels
from gender_cls.errors import UserError

log = logging.getLogger(__name__)


def resolve_placement(placement: str, augment: AugmentConfig) -> str:
    """'gpu' or 'cpu'; auto picks the GPU when one is visible and there is augmentation to do."""
    if placement not in AUGMENT_PLACEMENTS:
        raise ValueError(f"augment_on must be one of {AUGMENT_PLACEMENTS}, got {placement!r}")
    if augment.is_identity:
        return "cpu"  # nothing to place: the CPU only decodes
    if augment.has_photo_effects:
        if placement == "gpu":
            raise UserError("--saturation_range, --hue_range, --grayscale_probability, "
                            "--blur_sigma and --jpeg_quality run in the input pipeline only; "
                            "use --augment_on cpu or auto")  # fmt: skip
        placement = "cpu"

    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    if placement == "auto":
        placement = "gpu" if has_gpu else "cpu"
    if placement == "cpu":
        log.info("augmentation runs in the input pipeline (OpenCV, on the CPU)")
    elif has_gpu:
        log.info("augmentation runs inside the model, on the GPU")
    else:
        log.warning("--augment_on gpu without a GPU: the augmentation inside the model runs on "
                    "the CPU")  # fmt: skip
    return placement


def _border(index, size: int, fill_mode: str):
    """Map integer source indices into [0, size) as OpenCV's border modes do; also returns
    which indices were inside (only 'constant' uses it, to fill with 0)."""
    inside = (index >= 0) & (index < size)
    if fill_mode == "wrap":
        index = ops.mod(index, size)
    elif fill_mode == "reflect":  # fedcba|abcdefgh|hgfedcb
        index = ops.mod(index, 2 * size)
        index = ops.where(index < size, index, 2 * size - 1 - index)
    return ops.clip(index, 0, size - 1), inside


def warp_batch(images, transforms, fill_mode: str = "nearest"):
    """Bilinear warp of (batch, h, w, c) images; transforms (batch, 6) map output to input."""
    batch, height, width, channels = ops.shape(images)
    ys, xs = ops.meshgrid(ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32"),
                          indexing="ij")  # fmt: skip
    t = ops.unstack(ops.reshape(transforms, (-1, 6, 1, 1)), axis=1)  # six (batch, 1, 1)
    source_x = t[0] * xs + t[1] * ys + t[2]  # (batch, h, w)
    source_y = t[3] * xs + t[4] * ys + t[5]
    x0, y0 = ops.floor(source_x), ops.floor(source_y)
    fx, fy = (source_x - x0)[..., None], (source_y - y0)[..., None]
    x0, y0 = ops.cast(x0, "int32"), ops.cast(y0, "int32")
    flat = ops.reshape(images, (-1, channels))
    first = ops.arange(batch, dtype="int32")[:, None, None] * (height * width)

    def corner(dy: int, dx: int):
        y, y_in = _border(y0 + dy, height, fill_mode)
        x, x_in = _border(x0 + dx, width, fill_mode)
        values = ops.take(flat, first + y * width + x, axis=0)
        if fill_mode == "constant":
            values = values * ops.cast(y_in & x_in, values.dtype)[..., None]
        return values

    top = corner(0, 0) * (1 - fx) + corner(0, 1) * fx
    bottom = corner(1, 0) * (1 - fx) + corner(1, 1) * fx
    return top * (1 - fy) + bottom * fy


class RandomAugment(keras.layers.Layer):
    """Random affine warp, brightness and contrast per image while training; identity otherwise.

    Input and output: float pixels in [0, 255], shape (batch, height, width, 3).
    """

    def __init__(self, augment: dict, seed: int | None = None, **kwargs):
        super().__init__(dtype="float32", **kwargs)  # float32 even under mixed precision
        self.augment = AugmentConfig(**augment)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, batch, low: float, high: float):
        return keras.random.uniform((batch,), low, high, seed=self.seed_generator)

    def _transforms(self, batch, height: int, width: int):
        """(batch, 6) output-to-input affine maps (a0, a1, a2, b0, b1, b2), one per image."""
        c = self.augment
        rot, shear = math.radians(c.rotation_range), math.radians(c.shear_range)
        max_dx = shift_pixels(c.width_shift_range, width)
        max_dy = shift_pixels(c.height_shift_range, height)
        sign = sign_y = ops.ones((batch,))
        if c.horizontal_flip:
            sign = ops.where(self._uniform(batch, 0.0, 1.0) < 0.5, -1.0, 1.0)
        if c.vertical_flip:
            sign_y = ops.where(self._uniform(batch, 0.0, 1.0) < 0.5, -1.0, 1.0)
        coefficients = affine_coefficients(
            ops, height, width,
            angle=self._uniform(batch, -rot, rot),
            zoom_x=self._uniform(batch, 1.0 - c.zoom_range, 1.0 + c.zoom_range),
            zoom_y=self._uniform(batch, 1.0 - c.zoom_range, 1.0 + c.zoom_range),
            shear=self._uniform(batch, -shear, shear),
            shift_x=self._uniform(batch, -max_dx, max_dx),
            shift_y=self._uniform(batch, -max_dy, max_dy),
            sign=sign, sign_y=sign_y,
        )  # fmt: skip
        return ops.stack(coefficients, axis=1)

    def _photometric(self, images, batch):
        """Brightness gain, then contrast about each image's mean, clipped to [0, 255]."""
        c = self.augment
        gain = ops.ones((batch,))
        if c.brightness_range is not None:
            gain = self._uniform(batch, *c.brightness_range)
        gain = gain[:, None, None, None]
        if c.contrast_range > 0:
            factor = self._uniform(batch, 1.0 - c.contrast_range, 1.0 + c.contrast_range)
            factor = factor[:, None, None, None]
            mean = ops.mean(images, axis=(1, 2, 3), keepdims=True) * gain
            images = images * gain * factor + mean * (1.0 - factor)
        else:
            images = images * gain
        return ops.clip(images, 0.0, 255.0)

    def call(self, images, training=None):
        if not training:
            return images
        batch = ops.shape(images)[0]
        if has_geometry(self.augment):
            transforms = self._transforms(batch, images.shape[1], images.shape[2])
            images = warp_batch(images, transforms, self.augment.fill_mode)
        if self.augment.brightness_range is not None or self.augment.contrast_range > 0:
            images = self._photometric(images, batch)
        return images

    def get_config(self) -> dict:
        return {**super().get_config(), "augment": dataclasses.asdict(self.augment),
                "seed": self.seed}  # fmt: skip


def with_augmentation(model: keras.Model, augment: AugmentConfig, seed: int) -> keras.Model:
    """A training wrapper: pixels -> RandomAugment -> `model`; it shares the model's layers."""
    inputs = keras.Input(model.input.shape[1:], name="pixels")
    augmented = RandomAugment(dataclasses.asdict(augment), seed, name="augment")(inputs)
    return keras.Model(inputs, model(augmented), name="train_with_augmentation")
