"""Probe distortions: each kind changes the image as it says."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.config import DISTORTION_KINDS
from gender_cls.data.augment.distort import distort


@pytest.mark.parametrize("kind", DISTORTION_KINDS)
def test_each_kind_changes_the_image_and_keeps_its_shape(kind):
    rgb = np.random.default_rng(0).integers(40, 200, (64, 48, 3)).astype(np.uint8)
    out = distort(rgb, kind, np.random.default_rng(1))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() > 3


def test_lowlight_darkens_and_overexposure_brightens():
    rgb = np.full((32, 32, 3), 128, np.uint8)
    assert distort(rgb, "lowlight", np.random.default_rng(0)).mean() < 60
    assert distort(rgb, "overexpose", np.random.default_rng(0)).mean() > 220
