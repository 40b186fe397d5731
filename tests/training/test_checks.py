"""Checks before work: names, weights, flips and downloads fail before a run folder exists."""

from __future__ import annotations

import pytest

from gender_cls.config import (
    AugmentConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from gender_cls.errors import UserError
from gender_cls.training import run as training
from gender_cls.training.run import train
from tests.helpers import tiny_config


def test_unknown_backbone_fails_before_a_run_directory_is_made(tmp_path):
    config = RunConfig(
        DataConfig(str(tmp_path / "data")), AugmentConfig.off(),
        ModelConfig(backbone="mobilenetv9", weights="none"),
        TrainConfig(output_dir=str(tmp_path / "run")),
    )  # fmt: skip
    with pytest.raises(UserError, match="unknown backbone 'mobilenetv9'"):
        training.train(config)
    assert not (tmp_path / "run").exists()


def test_a_missing_weights_file_fails_before_a_run_directory_is_made(tmp_path):
    config = RunConfig(DataConfig(str(tmp_path)), model=ModelConfig(weights="no.h5"),
                       train=TrainConfig(output_dir=str(tmp_path / "run")))  # fmt: skip
    with pytest.raises(UserError, match="no.h5: weights file not found"):
        training.train(config)
    assert not (tmp_path / "run").exists()


def test_a_flip_that_would_swap_left_and_right_is_refused(tmp_path):
    from gender_cls.data.demo import make_direction_dataset
    from gender_cls.errors import UserError

    data = make_direction_dataset(tmp_path / "direction", n_per_class=8, size=32)
    config = tiny_config(data, tmp_path / "run")
    config.augment.horizontal_flip = True
    with pytest.raises(UserError, match="'left' and 'right' swap .* pass --no-horizontal_flip"):
        train(config, verbose=0)
    config.augment.horizontal_flip, config.augment.vertical_flip = False, True
    with pytest.raises(UserError, match="'up' and 'down' swap .* pass --no-vertical_flip"):
        train(config, verbose=0)


def test_a_class_folder_name_no_card_takes_is_refused_before_training(tmp_path):
    """151 characters is a legal folder name; the card written after training would have been
    refused by prediction."""
    from gender_cls.errors import UserError
    from tests.helpers import make_image_tree

    long_name = "x" * 151
    data = make_image_tree(tmp_path / "data", {"female": 4, long_name: 4}, size=32)
    with pytest.raises(UserError, match=f"class folder '{long_name}': a class name must be"):
        train(tiny_config(data, tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()


def test_offline_imagenet_fails_first_and_leaves_no_run_directory(tmp_path, monkeypatch):
    import urllib.error

    from gender_cls.errors import UserError

    def offline(*_args, **_kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # an empty weights cache
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", offline)
    data = tmp_path / "data" / "train"
    for name in ("female", "male"):
        (data / name).mkdir(parents=True)
        (data / name / "broken.jpg").write_text("not an image")  # reading it would fail
    config = tiny_config(tmp_path / "data", tmp_path / "run")
    config.model.weights = "imagenet"
    with pytest.raises(UserError, match=r"ImageNet weights .* copy it into ~/.keras/models/"):
        train(config, verbose=0)
    assert not (tmp_path / "run").exists()
