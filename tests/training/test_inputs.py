"""A run's inputs: the split re-checked on resume, faces cropped once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gender_cls.config import FaceCrop
from tests.helpers import tiny_config


@pytest.mark.slow
def test_training_detects_each_image_once_and_records_the_crop(face_run):
    result, calls = face_run
    assert calls == 16 + 8  # train + val, once each, though two epochs ran
    assert result.card.face_crop == FaceCrop("blazeface", 0.25)
    saved = json.loads((result.run_dir / "model.json").read_text())
    assert saved["face_crop"] == {"detector": "blazeface", "margin": 0.25, "template": "arcface"}
    assert len(list((result.run_dir / "face_cache").glob("*.png"))) == 24


def test_resume_rechecks_the_split_and_a_damaged_split_file_is_one_line(tmp_path):
    from gender_cls.data.index import DatasetIndex, discover
    from gender_cls.errors import UserError
    from gender_cls.training.inputs import _load_index
    from tests.helpers import make_image_tree

    data = make_image_tree(tmp_path / "data", {"female": 3, "male": 3})
    run = tmp_path / "run"
    run.mkdir()
    config = tiny_config(data, run)
    index = _load_index(config, run, resume=False, cluster=None)  # writes split.json
    assert DatasetIndex.load(run / "split.json").class_names == index.class_names
    for path in discover(str(data), 0.34, 0).splits["train"].paths:
        Path(path).write_text("no longer an image")
    with pytest.raises(UserError, match="no readable"):
        _load_index(config, run, resume=True, cluster=None)
    (run / "split.json").write_text('{"root": "data", "splits": {"tra')
    with pytest.raises(UserError, match=r"split.json: not a readable split file"):
        _load_index(config, run, resume=True, cluster=None)
