"""gender-cls export, crop-faces, calibrate and distort: the files they write and their one-line
errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gender_cls.cli import export_command
from gender_cls.data.images import read_image
from gender_cls.metrics.calibration import (
    apply_temperature,
)
from gender_cls.predict.predictor import Predictor
from tests.helpers import (
    FACES,
    make_image_tree,
    needs,
    write_image,
)

pytestmark = pytest.mark.slow  # every test here trains or exports a model


@pytest.mark.slow
def test_calibrate_command_stores_the_temperature_beside_and_inside(trained_run, tmp_path):
    import shutil

    from click.testing import CliRunner

    from gender_cls.artifacts.card import embedded_card, resolve_model
    from gender_cls.cli import calibrate_command

    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)  # the session's run stays as it is
    result = CliRunner().invoke(calibrate_command, ["--model_path", str(run)])
    assert result.exit_code == 0, result.output
    assert "temperature" in result.output and "ECE" in result.output
    card = resolve_model(run).card
    inside = embedded_card(run / "model.keras")
    assert card.temperature != 1.0 and inside.temperature == card.temperature
    assert inside.threshold == card.threshold and "calibrated" in card.threshold_source
    images = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    raw = Predictor(run, calibrated=False).predict_arrays(images)
    np.testing.assert_allclose(Predictor(run).predict_arrays(images),
                               apply_temperature(raw, card.temperature), atol=1e-9)  # fmt: skip


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


def test_int8_export_calibrates_on_training_images(exported_run):
    result = CliRunner().invoke(export_command, ["--model_path", str(exported_run),
                                                 "--quantize", "int8"])  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads((exported_run / "model.json").read_text())
    assert (exported_run / meta["exports"]["tflite_int8"]["file"]).is_file()
    assert meta["exports"]["tflite"]["quantize"] is None  # the float export stays the default


def test_crop_faces_mirrors_the_tree(face_data, tmp_path):
    from gender_cls.cli import crop_faces_command

    out = tmp_path / "out"
    result = CliRunner().invoke(crop_faces_command, [str(face_data / "test"), str(out),
                                                     "--size", "48"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "face found in 8 of 9 images; 1 without a face (whole image used)" in result.output
    written = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    sources = sorted(p.relative_to(face_data / "test").with_suffix(".png")
                     for p in (face_data / "test").rglob("*.*"))  # fmt: skip
    assert written == sources
    assert all(read_image(out / p).shape == (48, 48, 3) for p in written)
    assert (out / "no_face_found.txt").read_text().strip().endswith("blank.png")


@needs(FACES)
def test_crop_faces_on_a_missing_folder_is_exit_2(tmp_path):
    from gender_cls.cli import crop_faces_command

    result = CliRunner().invoke(crop_faces_command, [str(tmp_path / "nope"), str(tmp_path / "o")])
    assert result.exit_code == 2 and "not a folder" in result.output


def test_crop_faces_keeps_same_stem_images_apart_and_refuses_an_output_inside_its_input(
    face_data, tmp_path
):
    from gender_cls.cli import crop_faces_command

    src = tmp_path / "src" / "male"
    src.mkdir(parents=True)
    face = sorted((face_data / "test" / "male").glob("*.jpg"))[0]
    shutil.copy(face, src / "a.jpg")
    write_image(src / "a.png", read_image(face))
    result = CliRunner().invoke(crop_faces_command, [str(src.parent), str(tmp_path / "out"),
                                                     "--size", "48"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out" / "male").iterdir()) == ["a_jpg.png",
                                                                             "a_png.png"]  # fmt: skip
    inside = CliRunner().invoke(crop_faces_command, [str(src.parent), str(src.parent / "sub")])
    assert inside.exit_code == 2 and "must lie outside" in inside.output
