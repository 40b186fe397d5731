"""Test-time augmentation: fixed, light views of each image whose predictions are averaged."""

from __future__ import annotations

import numpy as np

from gender_cls.data.augment.geometry import affine_matrix
from gender_cls.data.images import warp_image

# In order: the image itself first, so N=1 is plain prediction. Zoom < 1 zooms in; shifts are a
# share of the side. Views with a flip are left out for a model not trained with flips.
VIEWS = (
    {},
    {"flip": True},
    {"zoom": 0.9},
    {"zoom": 0.9, "flip": True},
    {"shift_x": 0.05},
    {"shift_x": -0.05},
    {"shift_y": 0.05},
    {"shift_y": -0.05},
    {"zoom": 1.1},
    {"zoom": 1.1, "flip": True},
)


def view_specs(count: int, flip: bool) -> list[dict]:
    """The first `count` views allowed (without flips unless `flip`)."""
    allowed = [v for v in VIEWS if flip or not v.get("flip")]
    return allowed[: max(1, count)]


def make_view(images: np.ndarray, spec: dict) -> np.ndarray:
    """One view of a batch [N, H, W, 3]: the identity returns the batch itself."""
    if not spec:
        return images
    _, height, width, _ = images.shape
    zoom = spec.get("zoom", 1.0)
    matrix = affine_matrix(height, width, zoom_x=zoom, zoom_y=zoom,
                           shift_x=spec.get("shift_x", 0.0) * width,
                           shift_y=spec.get("shift_y", 0.0) * height,
                           flip=spec.get("flip", False))  # fmt: skip
    return np.stack([warp_image(image, matrix, "reflect") for image in images])


def average_over_views(predict, images: np.ndarray, count: int, flip: bool) -> np.ndarray:
    """Mean of `predict(view)` over the first `count` views of `images`."""
    specs = view_specs(count, flip)
    return np.mean([predict(make_view(images, spec)) for spec in specs], axis=0)
