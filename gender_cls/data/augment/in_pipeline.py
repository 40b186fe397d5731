"""Augmentation: one composed affine warp per image, then brightness and contrast, then the
colour, grey, blur and JPEG changes real photos vary in.

The ranges mean what they mean in Keras' ImageDataGenerator, so `rotation_range=20,
zoom_range=0.2, ...` carries over one to one. The per-image work runs in OpenCV (it releases
the GIL, and its warpAffine is about 6x faster per image than TensorFlow's projective-transform
kernel on a CPU); tf.data runs it in parallel and hands each image its own seed, so runs repeat.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import tensorflow as tf

from gender_cls.config import DISTORTION_KINDS, AugmentConfig
from gender_cls.data.augment.distort import distort
from gender_cls.data.augment.geometry import affine_matrix, has_geometry, shift_pixels
from gender_cls.data.images import load_image, read_image, warp_image


def random_matrix(height: int, width: int, config: AugmentConfig, rng) -> np.ndarray:
    """Draw one composed affine matrix from the configured ranges."""
    rot, zoom, shear = config.rotation_range, config.zoom_range, config.shear_range
    max_dx = shift_pixels(config.width_shift_range, width)
    max_dy = shift_pixels(config.height_shift_range, height)
    return affine_matrix(
        height,
        width,
        angle_deg=rng.uniform(-rot, rot),
        zoom_x=rng.uniform(1.0 - zoom, 1.0 + zoom),
        zoom_y=rng.uniform(1.0 - zoom, 1.0 + zoom),
        shear_deg=rng.uniform(-shear, shear),
        shift_x=rng.uniform(-max_dx, max_dx),
        shift_y=rng.uniform(-max_dy, max_dy),
        flip=config.horizontal_flip and rng.uniform() < 0.5,
        flip_y=config.vertical_flip and rng.uniform() < 0.5,
    )


def adjust_photometric(image: np.ndarray, config: AugmentConfig, rng) -> np.ndarray:
    """Multiply brightness, then scale contrast about the image mean; saturates to uint8."""
    gain, bias = 1.0, 0.0
    if config.brightness_range is not None:
        gain = rng.uniform(*config.brightness_range)
    if config.contrast_range > 0:
        factor = rng.uniform(1.0 - config.contrast_range, 1.0 + config.contrast_range)
        mean = float(image.mean()) * gain
        gain, bias = gain * factor, mean * (1.0 - factor)
    if gain == 1.0 and bias == 0.0:
        return image
    return cv2.addWeighted(image, gain, image, 0.0, bias)


def adjust_colour(image: np.ndarray, config: AugmentConfig, rng) -> np.ndarray:
    """Saturation and hue jitter, grey, blur, JPEG re-encoding and one of distort.py's
    distortions, each drawn only when set."""
    if config.saturation_range or config.hue_range:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)  # H in [0, 180)
        if config.hue_range:
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-config.hue_range, config.hue_range) / 2) % 180
        if config.saturation_range:
            s = config.saturation_range
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1.0 - s, 1.0 + s), 0, 255)
        image = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if config.grayscale_probability and rng.uniform() < config.grayscale_probability:
        image = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    if config.blur_sigma:
        sigma = rng.uniform(0.0, config.blur_sigma)
        if sigma > 0.2:
            image = cv2.GaussianBlur(image, (0, 0), sigma)
    if config.jpeg_quality:
        quality = int(rng.integers(config.jpeg_quality, 96))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        _, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if config.distort_probability and rng.uniform() < config.distort_probability:
        image = distort(image, str(rng.choice(DISTORTION_KINDS)), rng)
    return image


def _resize_matrix(height: int, width: int, size: int) -> np.ndarray:
    """3x3 map from a size x size output grid to a height x width source (pixel centres aligned)."""
    sx, sy = width / size, height / size
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def _shrink_for_warp(image: np.ndarray, size: int) -> np.ndarray:
    """Area-shrink a source more than twice the output size, so the bilinear warp does not alias."""
    factor = min(image.shape[:2]) // (2 * size)
    if factor < 2:
        return image
    height, width = image.shape[:2]
    return cv2.resize(image, (width // factor, height // factor), interpolation=cv2.INTER_AREA)


def augment_image(
    image: np.ndarray, config: AugmentConfig, seed: int, size: int | None = None
) -> np.ndarray:
    """Augment one uint8 image [H, W, 3]; the same seed gives the same result.

    With `size`, the output is size x size and the resize is folded into the same warp.
    """
    rng = np.random.default_rng(seed)
    size = size or image.shape[0]
    image = _shrink_for_warp(image, size)
    height, width = image.shape[:2]
    resizing = (height, width) != (size, size)
    if has_geometry(config) or resizing:
        matrix = random_matrix(size, size, config, rng) if has_geometry(config) else np.eye(2, 3)
        if resizing:
            full = np.vstack([matrix, [0.0, 0.0, 1.0]])
            matrix = (_resize_matrix(height, width, size) @ full)[:2].astype(np.float32)
        image = warp_image(image, matrix, config.fill_mode, (size, size))
    image = adjust_photometric(image, config, rng)
    return adjust_colour(image, config, rng) if config.has_photo_effects else image


def augment_op(config: AugmentConfig):
    """A tf op: (uint8 image [H, W, 3], int64 seed) -> augmented image of the same shape."""

    def op(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        out = tf.numpy_function(
            lambda x, s: augment_image(x, config, int(s)), [image, seed], tf.uint8, stateful=False
        )
        out.set_shape(image.shape)
        return out

    return op


def load_augmented_op(size: int, resize: str, config: AugmentConfig):
    """A tf op: (path, int64 seed) -> augmented uint8 image [size, size, 3], decoded in the same
    call (one Python round trip per image; a plain resize is folded into the warp)."""

    def load(path: bytes, seed) -> np.ndarray:
        if resize == "stretch":
            return augment_image(read_image(os.fsdecode(path), size_hint=size), config, int(seed),
                                 size)  # fmt: skip
        return augment_image(load_image(os.fsdecode(path), size, resize), config, int(seed))

    def op(path: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        out = tf.numpy_function(load, [path, seed], tf.uint8, stateful=False)
        out.set_shape([size, size, 3])
        return out

    return op
