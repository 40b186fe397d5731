"""Alignment: a similarity transform that puts a face's landmarks on a template's (ArcFace's or
dlib's chips), scaled to the output size with a margin of context."""

from __future__ import annotations

import cv2
import numpy as np

from gender_cls.faces.detectors import Face

# Alignment templates: where the left eye, right eye (as seen in the image), nose tip and mouth
# centre land in a unit square around the face. arcface: ArcFace's 112x112 template / 112.
# dlib: the chips of dlib's face embedding (get_face_chip_details: its 5-point template's eye
# corners averaged into eye centres; nose tip and mouth centre from its mean 68-point face).
TEMPLATES = {
    "arcface": np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [56.1396, 92.2848]], np.float32) / 112.0,
    "dlib": np.array([[0.2273300617, 0.2213958465], [0.7528139680, 0.2212327963],
                      [0.490127, 0.515625], [0.490127, 0.8052745]], np.float32),
}  # fmt: skip


FITTED_POINTS = {"arcface": 2, "dlib": 4}  # landmarks the similarity transform is fitted to


# outside the image: replicated edges, or black as dlib's chips (cosine 0.994 against 0.992 on
# the tight crops of faces/val)
BORDERS = {"arcface": cv2.BORDER_REPLICATE, "dlib": cv2.BORDER_CONSTANT}


def template(size: int, margin: float, name: str = "arcface") -> np.ndarray:
    """A template's landmarks in a size x size crop with `margin` of context on each side (for
    dlib's, `margin` is its chips' padding)."""
    return (TEMPLATES[name] - 0.5) * (size / (1.0 + 2.0 * margin)) + size / 2.0


def alignment_matrix(
    landmarks: np.ndarray, size: int, margin: float, name: str = "arcface"
) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) onto the template. ArcFace's:
    fitted to the eyes (a fit to all four points left the eyes over 2 px off in a third of the
    faces). dlib's: fitted to all four, as dlib fits its five (the descriptor's cosine to dlib's
    own pipeline: 0.992 against 0.991 with the eyes only, README "Faces")."""
    points = FITTED_POINTS[name]
    matrix, _ = cv2.estimateAffinePartial2D(
        landmarks[:points].astype(np.float32),
        template(size, margin, name)[:points],
        method=cv2.LMEDS,
    )
    if matrix is None:
        raise ValueError("degenerate landmarks")
    return matrix


def align(rgb: np.ndarray, face: Face, size: int, margin: float, name: str = "arcface"):
    """The face warped so its landmarks land on the template: eyes level, at fixed positions."""
    matrix = alignment_matrix(face.landmarks, size, margin, name)
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA,
                          borderMode=BORDERS[name])  # fmt: skip
