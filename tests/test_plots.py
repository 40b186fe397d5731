"""The figures: each function writes one readable PNG of the size it draws, atomically."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gender_cls import plots


@pytest.mark.parametrize(
    "draw",
    [
        lambda p: plots.training_curve(
            {"loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.7, 0.65]}, "loss", p, phase2_start=1
        ),
        lambda p: plots.confusion_matrix([[5, 1], [2, 7]], ["female", "male"], p),
        lambda p: plots.roc_curve([0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.8, 0.9], p),
        lambda p: plots.pr_curve([0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.8, 0.9], p),
        lambda p: plots.similarity_histogram([0.8, 0.9, 0.7], [0.2, 0.4], 0.5, p),
        lambda p: plots.lr_finder(
            [1e-4, 1e-3, 1e-2], [1.0, 0.5, 2.0], np.array([1.0, 0.6, 1.5]), 1e-3, p
        ),
    ],
    ids=["training_curve", "confusion_matrix", "roc", "pr", "similarity", "lr_finder"],
)
def test_each_figure_is_one_png_written_whole(tmp_path, draw):
    path = draw(tmp_path / "deep" / "figure.png")
    assert path == tmp_path / "deep" / "figure.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 200
    assert [p.name for p in path.parent.iterdir()] == ["figure.png"]  # no temp file left
