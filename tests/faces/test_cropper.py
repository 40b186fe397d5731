"""The face cropper: no face, no crop."""

from __future__ import annotations

from gender_cls.config import FaceCrop
from gender_cls.faces.cropper import FaceCropper
from tests.helpers import BLANK


def test_a_blank_image_has_no_face():
    cropper = FaceCropper(FaceCrop())
    assert cropper.crop_image(BLANK, 64) == (None, None)
