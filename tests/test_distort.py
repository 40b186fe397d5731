"""gender-cls distort: every kind changes the image, a seed repeats, the tree is mirrored."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_image_tree
from PIL import Image

from gender_cls.config import DISTORTION_KINDS
from gender_cls.distort import distort
from gender_cls.images import read_image


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


def test_the_command_mirrors_the_tree_and_repeats_for_a_seed(tmp_path):
    from gender_cls.cli import distort_command

    make_image_tree(tmp_path / "src", {"Ann": 2, "Bob": 3}, size=40, seed=0)
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        args = [str(tmp_path / "src"), str(tmp_path / name), "--kinds", "blur,rain,jpeg",
                "--seed", str(seed)]  # fmt: skip
        result = CliRunner().invoke(distort_command, args)
        assert result.exit_code == 0, result.output
        runs[name] = {p.relative_to(tmp_path / name): p.read_bytes()
                      for p in sorted((tmp_path / name).rglob("*.jpg"))}  # fmt: skip
    assert len(runs["a"]) == 5 * 3 and runs["a"] == runs["b"] and runs["a"] != runs["c"]
    names = sorted(str(p) for p in runs["a"])
    assert names[0].startswith("Ann/") and names[0].endswith("_blur.jpg")
    assert read_image(tmp_path / "a" / names[0]).shape == (40, 40, 3)
    bad = CliRunner().invoke(distort_command, [str(tmp_path / "src"), str(tmp_path / "d"),
                                               "--kinds", "blur,smoke"])  # fmt: skip
    assert bad.exit_code == 2 and "unknown smoke" in bad.output


def test_a_jpg_and_a_png_of_one_stem_both_get_their_copies(tmp_path):
    from gender_cls.cli import distort_command

    make_image_tree(tmp_path / "src", {"Ann": 1}, size=40, seed=0)
    first = tmp_path / "src" / "Ann" / "img_000.png"
    Image.open(first).save(first.with_suffix(".jpg"))
    result = CliRunner().invoke(distort_command, [str(tmp_path / "src"), str(tmp_path / "out"),
                                                  "--kinds", "blur"])  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out" / "Ann").iterdir())
    assert names == ["img_000_jpg_blur.jpg", "img_000_png_blur.jpg"]
