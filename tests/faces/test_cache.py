"""The crop cache: each image detected once, damaged entries recropped, write failures reported."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gender_cls.config import FaceCrop
from gender_cls.data.images import read_image
from gender_cls.faces import cache, cropper
from gender_cls.faces.cache import CropCache
from tests.helpers import bomb_png


def test_the_cache_detects_each_image_once(face_data, tmp_path, monkeypatch):
    calls = []
    original = cropper.detect_largest
    monkeypatch.setattr(
        cropper, "detect_largest", lambda d, rgb: calls.append(1) or original(d, rgb)
    )
    paths = [str(p) for p in sorted((face_data / "test").rglob("*.*"))]
    cache = CropCache(tmp_path, FaceCrop(), 64)
    first = cache.get_many(paths)
    assert len(calls) == len(paths)
    again = CropCache(tmp_path, FaceCrop(), 64).get_many(paths)  # a new process, same cache
    assert len(calls) == len(paths) and again == first
    assert [r.crop is None for r in first] == [p.endswith("blank.png") for p in paths]
    assert read_image(next(r.crop for r in first if r.crop)).shape == (64, 64, 3)
    CropCache(tmp_path, FaceCrop(margin=0.1), 64).get_many(paths[:1])  # another crop
    assert len(calls) == len(paths) + 1


@pytest.mark.parametrize("damage", ["truncated", "wrong size", "30000 x 30000"])
def test_a_damaged_crop_in_the_cache_is_dropped_recropped_and_logged(face_data, tmp_path, caplog,
                                                                    damage):  # fmt: skip
    """Truncated (a full disk, a kill), another size, or replaced by a PNG of 900 million pixels:
    that one used to pass the check, bypass --max_pixels and peak at 6.3 GB; it is now refused
    from its header."""
    import logging

    paths = [str(p) for p in sorted((face_data / "train" / "male").glob("*.jpg"))[:2]]
    first = CropCache(tmp_path, FaceCrop(), 64).get_many(paths)
    damaged = Path(first[0].crop)
    good = damaged.read_bytes()
    if damage == "truncated":
        damaged.write_bytes(good[: len(good) // 3])
    elif damage == "wrong size":
        Image.fromarray(np.zeros((65, 64, 3), np.uint8)).save(damaged)
    else:
        bomb_png(damaged)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with caplog.at_level(logging.WARNING):
        again = CropCache(tmp_path, FaceCrop(), 64).get_many(paths)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert again == first and damaged.read_bytes() == good
    assert caplog.text.count("damaged face crop") == 1
    assert read_image(again[0].crop).shape == (64, 64, 3)
    assert grown_mb < 500, f"peak memory grew by {grown_mb:.0f} MB"


def test_a_crop_that_cannot_be_written_is_reported_not_raised(face_data, tmp_path, monkeypatch):
    monkeypatch.setattr(cache.cv2, "imwrite", lambda *args, **kwargs: False)
    path = str(sorted((face_data / "train" / "male").glob("*.jpg"))[0])
    result = CropCache(tmp_path, FaceCrop(), 64).get(path)
    assert result.crop is None and "could not write its crop" in result.error
    assert list(tmp_path.iterdir()) == []  # no crop and no temp file left
