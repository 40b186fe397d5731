"""The face cropper: detect the largest face (with a second look for dlib's template) and align
it, one detector per thread."""

from __future__ import annotations

import threading
from functools import partial

import numpy as np

from gender_cls.config import FaceCrop
from gender_cls.faces.alignment import align
from gender_cls.faces.detectors import BlazeFace, Face, detect_largest, make_detector

# BlazeFace's score for a second look where nothing reached its 0.75. dlib's template serves
# images known to hold a face (the faces recipe, the verifier): at 0.5 BlazeFace found the face in
# all but 38 of the 509 blurred, low-resolution, over-exposed, rainy or JPEG-damaged probes it
# had missed (README "Faces on photos"). The ArcFace template serves any image and keeps 0.75
# alone: at 0.5, 203 of the 247 chest X-rays would show a "face".
SECOND_LOOK = {"arcface": None, "dlib": 0.5}


class FaceCropper:
    """Detect and align faces, one detector per thread (LiteRT interpreters are not shareable)."""

    def __init__(self, crop: FaceCrop):
        self.crop = crop
        self._local = threading.local()
        self._local.detector = make_detector(crop.detector)  # fails now if it cannot load

    def detect(self, rgb: np.ndarray) -> Face | None:
        if not hasattr(self._local, "detector"):
            self._local.detector = make_detector(self.crop.detector)
        detector = self._local.detector
        face = detect_largest(detector, rgb)
        second = SECOND_LOOK[self.crop.template]
        if face is None and second and isinstance(detector, BlazeFace):
            face = detect_largest(partial(detector, min_score=second), rgb)
        return face

    def crop_image(self, rgb: np.ndarray, size: int) -> tuple[np.ndarray | None, Face | None]:
        """(aligned crop, face) or (None, None) when no face is found."""
        face = self.detect(rgb)
        if face is None:
            return None, None
        try:
            return align(rgb, face, size, self.crop.margin, self.crop.template), face
        except ValueError:
            return None, None
