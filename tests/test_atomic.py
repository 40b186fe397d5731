"""Atomic files: unique temp names, failed writes keep the old file."""

from __future__ import annotations

import pytest

from gender_cls.atomic import replacing, temp_path, write_text


def test_temp_names_are_unique_hidden_and_keep_the_suffix(tmp_path):
    names = {temp_path(tmp_path / "base.weights.h5") for _ in range(50)}
    assert len(names) == 50
    assert all(n.name.startswith(".base.") and n.name.endswith(".weights.h5") for n in names)
    assert temp_path(tmp_path / "model.tflite").suffix == ".tflite"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "model.tflite"
    write_text(target, "old")
    with pytest.raises(RuntimeError), replacing(target) as temp:
        temp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_a_folder_replaces_a_folder(tmp_path):
    target = tmp_path / "model_savedmodel"
    (target / "old").mkdir(parents=True)
    with replacing(target) as temp:
        (temp / "new").mkdir(parents=True)
    assert [p.name for p in target.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["model_savedmodel"]


def test_unique_stems_keep_the_extension_then_the_order_where_names_would_collide():
    from gender_cls.atomic import unique_stems

    assert unique_stems(["d/a.jpg", "d/a.png", "d/b.jpg", "e/a.jpg"]) == [
        "a_jpg",
        "a_png",
        "b",
        "a",
    ]
    assert unique_stems(["x/q.jpg", "y/q.jpg", "y/r.jpg"], flat=True) == ["q_jpg_0", "q_jpg_1", "r"]
    assert unique_stems(["../.hidden.png"]) == ["hidden"]
