"""The augmentation geometry: one affine matrix per draw, checked against NumPy and OpenCV."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.data.augment.geometry import affine_matrix
from gender_cls.data.images import warp_image
from tests.helpers import random_image


def transform(size, **params) -> np.ndarray:
    return affine_matrix(size, size, **params)


def test_zero_parameters_give_the_identity_warp():
    image = random_image()
    np.testing.assert_array_equal(warp_image(image, transform(16)), image)


def test_rotation_by_90_matches_rot90():
    image = random_image()
    rotated = warp_image(image, transform(16, angle_deg=90))
    np.testing.assert_array_equal(rotated, np.rot90(image, 1))


def test_flip_matches_fliplr():
    image = random_image()
    np.testing.assert_array_equal(warp_image(image, transform(16, flip=True)), image[:, ::-1])
    np.testing.assert_array_equal(warp_image(image, transform(16, flip_y=True)), image[::-1])


def test_shift_moves_content_by_whole_pixels():
    image = random_image()
    np.testing.assert_array_equal(warp_image(image, transform(16, shift_x=3))[:, :-3], image[:, 3:])


def test_zoom_out_by_two_shrinks_content():
    image = np.zeros((33, 33, 3), np.uint8)
    image[8:25, 8:25] = 255  # a centred square half the size
    out = warp_image(image, transform(33, zoom_x=2.0, zoom_y=2.0), "constant")
    assert out[12:21, 12:21].min() == 255 and out[:10].max() == 0


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "wrap", "constant"])
def test_fill_modes(fill_mode):
    """A shift by 3 px uncovers three columns at the right edge; each mode fills them its way."""
    image = random_image()
    out = warp_image(image, transform(16, shift_x=3), fill_mode)
    expected = {
        "nearest": image[:, [15, 15, 15]],  # the edge column repeated
        "reflect": image[:, [15, 14, 13]],  # mirrored at the edge, edge included
        "wrap": image[:, [0, 1, 2]],  # continued from the other side
        "constant": np.zeros((16, 3, 3), np.uint8),
    }[fill_mode]
    np.testing.assert_array_equal(out[:, 13:], expected)
    np.testing.assert_array_equal(out[:, :13], image[:, 3:])
