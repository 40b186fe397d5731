"""Hostile model cards, generated field by field from the card's own rules: each is one UserError
naming the field, never a traceback and never a card that answers wrongly."""

from __future__ import annotations

import json
import zipfile
from dataclasses import fields

import pytest

from gender_cls.artifacts.card import EMBEDDED_CARD, ModelCard, embedded_card
from gender_cls.artifacts.card_fields import CARD_FIELDS, MAX_CARD_BYTES, MAX_DEPTH, Rule
from gender_cls.errors import UserError
from tests.helpers import declare_size

VALID = {"class_names": ["female", "male"], "image_size": 64}
NESTED = json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
LOOK_ALIKE = "\u0666\u0664"  # 64 in Arabic-Indic digits: str.isdigit() says yes, int() says no

SECTION_VALUES = {
    "config": [{"train": {"lr": "fast"}}, {"model": []}, {"nonsense": {}}],
    "face_crop": [{"detector": "none"}, {"margin": "wide"}, {"margin": float("nan")},
                  {"margin": 7}, {"template": ["arcface"]}, {"extra": 1}],
}  # fmt: skip


def hostile_values(name: str, rule: Rule) -> list:
    """Values the rule must refuse: wrong types, look-alike digits, non-finite and out-of-range
    numbers, unknown choices, duplicate or unsafe names, deep nesting."""
    wrong_types = [[1], {"a": 1}, True] + ([] if rule.optional else [None])
    outside = [rule.low - 0.001, rule.high + 1] if rule.kind in ("whole", "number") else []
    by_kind = {
        "whole": [LOOK_ALIKE, "64.0", 1.5, "", float("inf"), *outside],
        "number": ["0.5", LOOK_ALIKE, float("nan"), float("inf"), -float("inf"), *outside],
        "text": [5, "x" * 1001],
        "choice": ["other", 3, *(c.upper() for c in rule.choices)],
        "names": ["female,male", ["a"], ["a", "a"], ["a", "b/c"], ["a", 5], ["a", ".."],
                  ["a", "x" * 101], ["a", "b\n"]],
        "mapping": ["x", NESTED],
        "exports": ["x", {"tflite": {}}, {"onnx": {"file": "../x.onnx"}}, {"tflite": "f"}],
        "section": ["x", 5, *SECTION_VALUES.get(name, [])],
    }  # fmt: skip
    values = by_kind[rule.kind] + [v for v in wrong_types if rule.kind not in ("mapping", "section")
                                   or not isinstance(v, dict)]  # fmt: skip
    return [v for v in values if not (rule.kind == "section" and v == {})]


CASES = [
    (name, value) for name, rule in CARD_FIELDS.items() for value in hostile_values(name, rule)
]


def test_the_rules_cover_every_field_of_the_card():
    assert list(CARD_FIELDS) == [f.name for f in fields(ModelCard)]


@pytest.mark.parametrize("name, value", CASES, ids=[f"{n}={v!r:.30}" for n, v in CASES])
def test_a_hostile_field_is_one_user_error_naming_it(tmp_path, name, value):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({**VALID, name: value}))  # NaN and Infinity as Python writes them
    with pytest.raises(UserError) as error:
        ModelCard.load(path)
    message = str(error.value)
    assert message.startswith(f"{path}: field {name!r}") and "\n" not in message, message


def test_valid_values_at_the_limits_are_taken(tmp_path):
    card = {**VALID, "image_size": "2048", "threshold": 1, "temperature": 0.05,
            "face_crop": {"detector": "mtcnn", "margin": 0, "template": "dlib"}}  # fmt: skip
    (tmp_path / "model.json").write_text(json.dumps(card))
    loaded = ModelCard.load(tmp_path / "model.json")
    assert (loaded.image_size, loaded.threshold, loaded.face_crop.margin) == (2048, 1, 0)


@pytest.mark.parametrize("content, message", [
    (b'{"class_names": ["f\xe9male", "male"], "image_size": 64}', "not UTF-8 text: byte 19"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"class_names": ', "cannot read (Expecting value"),
    (b" " * (MAX_CARD_BYTES + 1), f"more than the {MAX_CARD_BYTES:,} such a file may have"),
])  # fmt: skip
def test_an_unreadable_card_file_is_one_line(tmp_path, content, message):
    (tmp_path / "model.json").write_bytes(content)
    with pytest.raises(UserError, match="^" + str(tmp_path / "model.json")) as error:
        ModelCard.load(tmp_path / "model.json")
    assert message in str(error.value)


def keras_zip(path, card: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr(EMBEDDED_CARD, card)


def test_a_keras_files_card_that_is_not_json_is_one_line(tmp_path):
    keras_zip(tmp_path / "m.keras", b"\x00\xff not json")
    with pytest.raises(UserError, match=r"m.keras \(its built-in card\): cannot read \(not UTF-8"):
        embedded_card(tmp_path / "m.keras")


def test_a_keras_files_card_declaring_gigabytes_is_refused_before_it_is_read(tmp_path):
    """The entry's declared size is set to 1.5 GB in both zip directories (a deflated bomb of
    that size took 4.8 GB to read): the size is refused from the directory, nothing is read."""
    path = tmp_path / "m.keras"
    keras_zip(path, json.dumps(VALID).encode())
    declare_size(path, EMBEDDED_CARD, 1_500_000_000)
    with pytest.raises(UserError, match="declares 1,500,000,000 bytes, more than a card's"):
        embedded_card(path)
