"""The geometry of the augmentation: ImageDataGenerator's ranges composed into one affine map.

Pure arithmetic (NumPy or keras.ops), shared by the OpenCV warp in the input pipeline
(`augment.py`) and the warp inside the model (`augment_layer.py`).
"""

from __future__ import annotations

import math

import numpy as np

from gender_cls.config import AugmentConfig


def affine_coefficients(
    xp, height, width, angle, zoom_x, zoom_y, shear, shift_x, shift_y, sign, sign_y=1.0
):
    """(a0, a1, a2, b0, b1, b2) of the output-to-input map x' = a0 x + a1 y + a2, y' = b0 x + ...

    Rotation @ shear @ zoom (with `sign` -1 flipping x, `sign_y` -1 flipping y) about the centre,
    then the shift. Angles
    in radians; works elementwise on floats or arrays of NumPy or keras.ops (`xp`), so the OpenCV
    and the in-model augmentation share one definition.
    """
    a0, b0 = xp.cos(angle) * zoom_x * sign, xp.sin(angle) * zoom_x * sign
    a1, b1 = -xp.sin(angle + shear) * zoom_y * sign_y, xp.cos(angle + shear) * zoom_y * sign_y
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return a0, a1, cx - a0 * cx - a1 * cy + shift_x, b0, b1, cy - b0 * cx - b1 * cy + shift_y


def affine_matrix(
    height: int,
    width: int,
    angle_deg: float = 0.0,
    zoom_x: float = 1.0,
    zoom_y: float = 1.0,
    shear_deg: float = 0.0,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    flip: bool = False,
    flip_y: bool = False,
) -> np.ndarray:
    """Rotation, shear, zoom, flips and shift about the centre composed into one 2x3 matrix.

    The matrix maps an output pixel (x, y) to the input pixel it samples; zoom > 1 zooms out and
    shifts are in pixels, as in ImageDataGenerator.
    """
    coefficients = affine_coefficients(
        np, height, width, math.radians(angle_deg), zoom_x, zoom_y, math.radians(shear_deg),
        shift_x, shift_y, -1.0 if flip else 1.0, -1.0 if flip_y else 1.0,
    )  # fmt: skip
    return np.asarray(coefficients, dtype=np.float32).reshape(2, 3)


def shift_pixels(fraction_or_pixels: float, size: int) -> float:
    """A shift range in pixels: a fraction of `size` below 1, pixels from 1 up."""
    return fraction_or_pixels * size if fraction_or_pixels < 1 else fraction_or_pixels


def has_geometry(config: AugmentConfig) -> bool:
    """True when any geometric range is set (rotation, zoom, shear, shift or a flip)."""
    ranges = (config.rotation_range, config.zoom_range, config.shear_range)
    shifts = (config.width_shift_range, config.height_shift_range)
    return any(r > 0 for r in ranges + shifts) or config.horizontal_flip or config.vertical_flip
