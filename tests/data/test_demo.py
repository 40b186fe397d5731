"""The demo data set: its layout."""

from __future__ import annotations

from gender_cls.data.demo import DIRECTIONS, make_direction_dataset
from gender_cls.data.index import discover


def test_direction_dataset_layout(tmp_path):
    root = make_direction_dataset(tmp_path / "dir", n_per_class=20, size=32, seed=0)
    index = discover(root)
    assert index.class_names == sorted(DIRECTIONS)
    assert [len(index.splits[s]) for s in ("train", "val", "test")] == [56, 12, 12]
