"""Options are checked when built (dataclasses, --config files, the command line), before any work."""

from __future__ import annotations

import json

import pytest

from gender_cls import training
from gender_cls.config import (
    AugmentConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from gender_cls.errors import UserError


@pytest.mark.parametrize("raw, message", [
    ({"train": {"loss": "mse"}}, "loss='mse' is not allowed; choose one of: bce, focal"),
    ({"train": 5}, "config section 'train' must be a JSON object"),
    ({"train": {"fine_tune_layers": "abc"}}, "fine_tune_layers='abc'"),
    ({"train": {"head_epochs": "ten"}}, "head_epochs='ten' has the wrong type; expected int"),
    ({"train": {"head_epochs": 2.5}}, "head_epochs=2.5 has the wrong type"),
    ({"train": {"lr": 0}}, "lr=0.0 is out of range; it must lie in (0, inf]"),
    ({"train": {"schedule": "step"}}, "schedule='step' is not allowed; choose one of: auto, "),
    ({"train": {"jit": "yes"}}, "jit='yes' has the wrong type; expected bool"),
    ({"data": {"balance": "smote"}}, "balance='smote'"),
    ({"data": {"batch_size": 0}}, "batch_size=0 is out of range"),
    ({"model": {"head": "custom"}}, "head='custom' is not allowed; choose one of: auto, mobilenet"),
    ({"model": {"dropout": 1.0}}, "dropout=1.0 is out of range"),
    ({"augment": {"brightness_range": [1.2, 0.8]}}, "brightness_range"),
    ({"augment": {"brightness_range": "0.8"}}, "brightness_range='0.8' has the wrong type"),
    ({"augment": {"fill_mode": "mirror"}}, "fill_mode='mirror'"),
    ({"train": {"los": "bce"}}, "unknown option(s) in config section 'train': los"),
    ({"trian": {}}, "unknown config section(s): trian"),
])  # fmt: skip
def test_bad_values_are_a_user_error_naming_the_option(raw, message):
    with pytest.raises(UserError) as error:
        RunConfig.from_dict(raw)
    assert message in str(error.value)


def test_values_from_json_are_coerced_to_their_types():
    config = RunConfig.from_dict({
        "train": {"fine_tune_layers": 20, "lr": 1},
        "augment": {"brightness_range": [0.8, 1.2]},
        "model": {"head_units": [64, 32]},
    })  # fmt: skip
    assert config.train.fine_tune_layers == "20" and isinstance(config.train.lr, float)
    assert config.augment.brightness_range == (0.8, 1.2)
    assert config.model.head_units == (64, 32)
    assert RunConfig.from_dict(config.to_dict()) == config


def test_a_config_file_that_is_not_json_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match="config.json: cannot read this config"):
        RunConfig.load(path)


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


def test_build_run_config_defaults(captured):
    result, config = captured("--output_dir", "runs/x")
    assert result.exit_code == 0, result.output
    expected = RunConfig(DataConfig("DATA"), train=TrainConfig(output_dir="runs/x"))
    assert config == expected


def test_build_run_config_file_then_command_line(captured, tmp_path):
    saved = RunConfig(DataConfig("DATA", batch_size=16), train=TrainConfig(lr=0.01, patience=9))
    path = tmp_path / "config.json"
    saved.save(path)
    _, config = captured("--config", str(path), "--lr", "0.5", "--output_dir", "runs/x")
    assert config.data.batch_size == 16 and config.train.patience == 9  # from the file
    assert config.train.lr == 0.5  # the command line wins
    assert config.model == ModelConfig()  # defaults where neither says anything


def test_dashed_and_underscored_spellings_are_one_option(captured):
    _, dashed = captured("--batch-size", "7", "--no-horizontal-flip", "--fine-tune-layers",
                         "all", "--output-dir", "runs/x", "--threshold-metric", "balanced-accuracy")  # fmt: skip
    _, underscored = captured("--batch_size", "7", "--no-horizontal_flip", "--fine_tune_layers",
                              "all", "--output_dir", "runs/x", "--threshold_metric",
                              "balanced_accuracy")  # fmt: skip
    assert dashed == underscored
    assert dashed.data.batch_size == 7 and not dashed.augment.horizontal_flip
    assert dashed.train.threshold_metric == "balanced_accuracy"


def test_epochs_alone_trains_the_head_only(captured):
    _, config = captured("--epochs", "3", "--output_dir", "runs/x")
    assert (config.train.head_epochs, config.train.fine_tune_epochs) == (3, 0)


@pytest.mark.parametrize("args, message", [
    (["--fine_tune_layers", "abc"], "fine_tune_layers='abc'"),
    (["--lr", "-1"], "lr=-1.0 is out of range"),
    (["--rotation_range", "400"], "rotation_range=400.0 is out of range"),
])  # fmt: skip
def test_bad_command_line_values_exit_2_before_training(captured, args, message):
    result, config = captured(*args, "--output_dir", "runs/x")
    assert result.exit_code == 2 and message in result.output and config is None


def test_a_bad_config_file_exits_2_before_training(captured, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"train": {"loss": "mse"}}))
    result, config = captured("--config", str(path), "--output_dir", "runs/x")
    assert result.exit_code == 2 and config is None
    assert f"{path}: option loss='mse' is not allowed" in result.output
