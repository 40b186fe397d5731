"""The face detectors: MTCNN and BlazeFace agree on the eyes."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.data.images import read_image
from gender_cls.faces import detectors
from tests.helpers import FACES, needs


@pytest.mark.slow
@needs(FACES)
def test_mtcnn_finds_the_same_eyes_as_blazeface():
    rgb = read_image(sorted((FACES / "val" / "male").glob("*.jpg"))[0])
    found = {
        name: detectors.detect_largest(detectors.make_detector(name), rgb)
        for name in detectors.DETECTORS
    }
    eye_distance = np.linalg.norm(found["blazeface"].landmarks[1] - found["blazeface"].landmarks[0])
    offsets = np.linalg.norm(
        found["mtcnn"].landmarks[:2] - found["blazeface"].landmarks[:2], axis=1
    )
    assert offsets.max() < 0.2 * eye_distance  # image-left eye first in both
