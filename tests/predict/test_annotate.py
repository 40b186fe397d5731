"""Annotation: the Grad-CAM overlay is a captioned colour picture."""

from __future__ import annotations

import numpy as np

from gender_cls.predict.gradcam import overlay


def test_overlay_is_a_captioned_colour_picture():
    rgb = np.full((40, 40, 3), 128, np.uint8)
    heat = np.zeros((5, 5))
    heat[2, 2] = 1
    picture = overlay(rgb, heat, "male 91%")
    assert picture.shape == (256, 256, 3) and picture[128, 128].std() > 0  # coloured centre
