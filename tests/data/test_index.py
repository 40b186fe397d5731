"""Indexing class folders into splits: layouts, stratified splits, unreadable files, class
weights."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from gender_cls.data.index import (
    DataError,
    DatasetIndex,
    check_readable,
    class_weights,
    discover,
    labelled_folder,
)
from tests.helpers import FACES, make_image_tree, needs


def test_train_val_test_layout(split_tree):
    index = discover(split_tree)
    assert index.class_names == ["female", "male"]
    assert index.layout == "folders"
    assert [len(index.splits[s]) for s in ("train", "val", "test")] == [20, 8, 8]
    assert index.splits["train"].counts(2) == [12, 8]


def test_validation_folder_name_is_accepted(split_tree):
    (split_tree / "val").rename(split_tree / "validation")
    assert len(discover(split_tree).splits["val"]) == 8


def test_train_only_is_split_stratified(split_tree):
    import shutil

    shutil.rmtree(split_tree / "val")
    index = discover(split_tree, val_split=0.25)
    assert index.layout == "val_split"
    assert index.splits["val"].counts(2) == [3, 2]
    assert index.splits["train"].counts(2) == [9, 6]


def test_flat_tree_split_is_stratified_and_deterministic(flat_tree):
    a = discover(flat_tree, val_split=0.2, seed=7)
    b = discover(flat_tree, val_split=0.2, seed=7)
    c = discover(flat_tree, val_split=0.2, seed=8)
    assert a.class_names == ["cat", "dog", "fox"]
    assert a.splits["val"].counts(3) == [2, 2, 2]
    assert a.splits["val"].paths == b.splits["val"].paths
    assert a.splits["val"].paths != c.splits["val"].paths
    assert not set(a.splits["val"].paths) & set(a.splits["train"].paths)


def test_split_round_trips_through_json(flat_tree, tmp_path):
    index = discover(flat_tree)
    index.save(tmp_path / "split.json")
    loaded = DatasetIndex.load(tmp_path / "split.json")
    assert loaded.splits["val"].paths == index.splits["val"].paths
    assert loaded.class_names == index.class_names


def test_hidden_files_and_other_extensions_are_ignored(flat_tree):
    (flat_tree / "cat" / ".hidden.png").write_bytes(b"x")
    (flat_tree / "cat" / "notes.txt").write_text("x")
    (flat_tree / "cat" / "UPPER.PNG").write_bytes((flat_tree / "cat" / "img_000.png").read_bytes())
    index = discover(flat_tree, val_split=0.5)
    cat_paths = [p for p, y in zip(index.splits["train"].paths + index.splits["val"].paths,
                                   index.splits["train"].labels + index.splits["val"].labels,
                                   strict=True) if y == 0]  # fmt: skip
    assert len(cat_paths) == 11
    assert any(p.endswith("UPPER.PNG") for p in cat_paths)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "data folder not found"),
        (lambda root: root.mkdir(), "no class folders"),
        (lambda root: make_image_tree(root, {"only": 3}), "only one class"),
        (lambda root: (make_image_tree(root, {"a": 3}), (root / "b").mkdir()), "has no images"),
    ],
)
def test_bad_layouts_name_the_folder_and_the_fix(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(DataError, match=message) as error:
        discover(root)
    assert str(root) in str(error.value)


def test_class_in_val_but_not_in_train_is_an_error(split_tree):
    make_image_tree(split_tree / "val", {"other": 2})
    with pytest.raises(DataError, match="other.*not in the training classes"):
        discover(split_tree)


def test_corrupt_files_are_skipped_and_counted(split_tree, caplog):
    (split_tree / "train" / "male" / "broken.jpg").write_bytes(b"garbage")
    (split_tree / "val" / "female" / "empty.png").write_bytes(b"")
    index = discover(split_tree)
    assert len(index.splits["train"]) == 21
    with caplog.at_level(logging.WARNING):
        checked = check_readable(index)
    assert len(checked.skipped) == 2
    assert len(checked.splits["train"]) == 20 and len(checked.splits["val"]) == 8
    assert "skipped 2 unreadable" in caplog.text and "broken.jpg" in caplog.text
    assert "skipped 2 unreadable" in checked.summary()


def test_no_readable_images_in_a_class_is_an_error(split_tree):
    for path in (split_tree / "train" / "male").iterdir():
        path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="no readable images for class 'male'"):
        check_readable(discover(split_tree))


def test_labelled_folder_accepts_class_folders_or_a_root_with_test(split_tree):
    assert len(labelled_folder(split_tree).splits["test"]) == 8
    index = labelled_folder(split_tree / "val", ["female", "male"])
    assert index.splits["test"].counts(2) == [4, 4]


def test_class_weights_are_sklearn_balanced():
    weights = class_weights([0] * 30 + [1] * 10, 2)
    assert weights == pytest.approx({0: 40 / 60, 1: 40 / 20})


def test_summary_lists_counts_per_class(split_tree):
    rows = [line.split() for line in discover(split_tree).summary().splitlines()]
    assert rows == [
        ["class", "train", "val", "test"],
        ["female", "12", "4", "4"],
        ["male", "8", "4", "4"],
        ["total", "20", "8", "8"],
    ]


@needs(FACES)
def test_real_faces_are_found_and_readable():
    index = check_readable(discover(FACES))
    assert index.class_names == ["female", "male"]
    assert index.splits["train"].counts(2) == [793, 820]
    assert len(index.splits["test"]) == 345 and not index.skipped
    assert np.isclose(sum(class_weights(index.splits["train"].labels, 2).values()), 2, atol=0.01)


def test_a_saved_split_resolves_from_another_working_directory(tmp_path, monkeypatch):
    from gender_cls.data.index import DatasetIndex, discover

    make_image_tree(tmp_path / "work" / "data", {"female": 3, "male": 3})
    monkeypatch.chdir(tmp_path / "work")
    discover("data", 0.34, 0).save(tmp_path / "split.json")
    monkeypatch.chdir(tmp_path)
    loaded = DatasetIndex.load(tmp_path / "split.json")
    assert all(Path(p).is_file() for split in loaded.splits.values() for p in split.paths)
