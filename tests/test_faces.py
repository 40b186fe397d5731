"""Face detection, alignment, the crop cache, and the face crop through training, evaluation,
prediction and crop-faces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import FACES, needs, tiny_config, write_image

from gender_cls import faces
from gender_cls.config import FaceCrop
from gender_cls.images import read_image

BLANK = np.full((160, 160, 3), 128, np.uint8)


def test_a_blank_image_has_no_face():
    cropper = faces.FaceCropper(FaceCrop())
    assert cropper.crop_image(BLANK, 64) == (None, None)


def test_template_keeps_the_margin_around_the_face():
    tight, loose = faces.template(112, 0.0), faces.template(112, 0.25)
    np.testing.assert_allclose(tight, faces.TEMPLATES["arcface"] * 112, atol=1e-4)
    eye_distance = lambda t: np.linalg.norm(t[1] - t[0])  # noqa: E731
    assert eye_distance(loose) == pytest.approx(eye_distance(tight) / 1.5)


@needs(FACES)
def test_alignment_puts_the_detected_eyes_on_the_template():
    detector = faces.make_detector("blazeface")
    paths = sorted((FACES / "val" / "female").glob("*.jpg"))[:10]
    for path in paths:
        rgb = read_image(path)
        face = faces.detect_largest(detector, rgb)
        assert face is not None, path
        matrix = faces.alignment_matrix(face.landmarks, 128, 0.25)
        eyes = face.landmarks[:2] @ matrix[:, :2].T + matrix[:, 2]
        np.testing.assert_allclose(eyes, faces.template(128, 0.25)[:2], atol=2.0)
        aligned = faces.align(rgb, face, 128, 0.25)  # found again where they were put
        again = faces.detect_largest(detector, aligned)
        assert np.abs(again.landmarks[:2] - faces.template(128, 0.25)[:2]).max() < 6.0


@pytest.fixture(scope="module")
def face_data(tmp_path_factory):
    """A few real faces per class and split, plus a blank image in the test split."""
    if not FACES.is_dir():
        pytest.skip(f"{FACES} not present")
    root = tmp_path_factory.mktemp("faces")
    for split, count in (("train", 8), ("val", 4), ("test", 4)):
        for label in ("female", "male"):
            for path in sorted((FACES / split / label).glob("*.jpg"))[:count]:
                (root / split / label).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, root / split / label / path.name)
    write_image(root / "test" / "female" / "blank.png", BLANK)
    return root


def test_the_cache_detects_each_image_once(face_data, tmp_path, monkeypatch):
    calls = []
    original = faces.detect_largest
    monkeypatch.setattr(faces, "detect_largest", lambda d, rgb: calls.append(1) or original(d, rgb))
    paths = [str(p) for p in sorted((face_data / "test").rglob("*.*"))]
    cache = faces.CropCache(tmp_path, FaceCrop(), 64)
    first = cache.get_many(paths)
    assert len(calls) == len(paths)
    again = faces.CropCache(tmp_path, FaceCrop(), 64).get_many(paths)  # a new process, same cache
    assert len(calls) == len(paths) and again == first
    assert [r.crop is None for r in first] == [p.endswith("blank.png") for p in paths]
    assert read_image(next(r.crop for r in first if r.crop)).shape == (64, 64, 3)
    faces.CropCache(tmp_path, FaceCrop(margin=0.1), 64).get_many(paths[:1])  # another crop
    assert len(calls) == len(paths) + 1


def test_a_damaged_crop_in_the_cache_is_dropped_recropped_and_logged(face_data, tmp_path,
                                                                    caplog):  # fmt: skip
    import logging

    paths = [str(p) for p in sorted((face_data / "train" / "male").glob("*.jpg"))[:2]]
    first = faces.CropCache(tmp_path, FaceCrop(), 64).get_many(paths)
    damaged = Path(first[0].crop)
    good = damaged.read_bytes()
    damaged.write_bytes(good[: len(good) // 3])  # truncated, as by a full disk or a kill
    with caplog.at_level(logging.WARNING):
        again = faces.CropCache(tmp_path, FaceCrop(), 64).get_many(paths)
    assert again == first and damaged.read_bytes() == good
    assert caplog.text.count("damaged face crop") == 1
    assert read_image(again[0].crop).shape == (64, 64, 3)


@pytest.fixture(scope="module")
def face_run(face_data, tmp_path_factory):
    """A tiny run trained with --face_crop, counting detector calls over its two epochs."""
    from gender_cls.training import train

    calls = []
    original = faces.detect_largest
    faces.detect_largest = lambda d, rgb: calls.append(1) or original(d, rgb)
    try:
        config = tiny_config(face_data, tmp_path_factory.mktemp("run") / "run", head_epochs=2)
        config.data.face_crop = True
        result = train(config, verbose=0)
    finally:
        faces.detect_largest = original
    return result, len(calls)


@pytest.mark.slow
def test_training_detects_each_image_once_and_records_the_crop(face_run):
    result, calls = face_run
    assert calls == 16 + 8  # train + val, once each, though two epochs ran
    assert result.card.face_crop == FaceCrop("blazeface", 0.25)
    saved = json.loads((result.run_dir / "model.json").read_text())
    assert saved["face_crop"] == {"detector": "blazeface", "margin": 0.25, "template": "arcface"}
    assert len(list((result.run_dir / "face_cache").glob("*.png"))) == 24


@pytest.mark.slow
def test_evaluation_applies_the_models_face_crop_without_a_flag(face_run, face_data, tmp_path):
    from gender_cls.evaluation import evaluate, write_outputs

    run = face_run[0].run_dir
    test = face_data / "test"
    cropped = evaluate(run, test, face_cache=tmp_path / "cache")
    assert cropped.metrics["face_crop"] == {"detector": "blazeface", "margin": 0.25,
                                            "template": "arcface", "found": 8, "no_face": 1,
                                            "fallback": "full"}  # fmt: skip
    assert cropped.metrics["images"] == 9 and str(test / "female" / "blank.png") in cropped.paths
    skipped = evaluate(run, test, face_cache=tmp_path / "cache", face_fallback="skip")
    assert skipped.metrics["images"] == 8
    assert "1 without a face (left out) and not in the figures above" in skipped.full_report()
    write_outputs(skipped, tmp_path / "out")
    assert (tmp_path / "out" / "no_face_found.txt").read_text().strip().endswith("blank.png")
    plain = evaluate(run, test, face_crop=False)
    assert "face_crop" not in plain.metrics and plain.metrics["images"] == 9


@pytest.mark.slow
def test_predict_reports_the_face_box_or_its_absence(face_run, face_data, tmp_path):
    from gender_cls.cli import predict_command

    face = sorted((face_data / "test" / "male").glob("*.jpg"))[0]
    blank = face_data / "test" / "female" / "blank.png"
    args = ["--image_path", str(face), str(blank), "--model_path", str(face_run[0].run_dir),
            "--save_dir", str(tmp_path / "annotated")]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert " face at " in lines[0] and lines[1].endswith("no face found: whole image used")
    records = json.loads(CliRunner().invoke(predict_command, [*args, "--json"]).stdout)
    x0, y0, x1, y1 = records[0]["face_box"]
    height, width = read_image(face).shape[:2]
    assert 0 < (x0 + x1) / 2 < width and 0 < (y0 + y1) / 2 < height and x1 - x0 > width / 3
    assert records[1]["face_found"] is False and "face_box" not in records[1]
    off = CliRunner().invoke(predict_command, [*args, "--no-face_crop"])
    assert off.output.splitlines()[0].endswith(str(face))  # no face note without the crop
    assert len(list((tmp_path / "annotated").iterdir())) == 2


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


@pytest.mark.slow
@needs(FACES)
def test_mtcnn_finds_the_same_eyes_as_blazeface():
    rgb = read_image(sorted((FACES / "val" / "male").glob("*.jpg"))[0])
    found = {name: faces.detect_largest(faces.make_detector(name), rgb) for name in faces.DETECTORS}
    eye_distance = np.linalg.norm(found["blazeface"].landmarks[1] - found["blazeface"].landmarks[0])
    offsets = np.linalg.norm(
        found["mtcnn"].landmarks[:2] - found["blazeface"].landmarks[:2], axis=1
    )
    assert offsets.max() < 0.2 * eye_distance  # image-left eye first in both


def test_a_crop_that_cannot_be_written_is_reported_not_raised(face_data, tmp_path, monkeypatch):
    monkeypatch.setattr(faces.cv2, "imwrite", lambda *args, **kwargs: False)
    path = str(sorted((face_data / "train" / "male").glob("*.jpg"))[0])
    result = faces.CropCache(tmp_path, FaceCrop(), 64).get(path)
    assert result.crop is None and "could not write its crop" in result.error
    assert list(tmp_path.iterdir()) == []  # no crop and no temp file left
