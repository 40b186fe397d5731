"""Options to RunConfig: defaults, epochs with and without a recipe, lr auto."""

from __future__ import annotations

from gender_cls.config import (
    DataConfig,
    RunConfig,
    TrainConfig,
)


def test_build_run_config_defaults(captured):
    result, config = captured("--output_dir", "runs/x")
    assert result.exit_code == 0, result.output
    expected = RunConfig(DataConfig("DATA"), train=TrainConfig(output_dir="runs/x"))
    assert config == expected


def test_epochs_alone_trains_the_head_only(captured):
    _, config = captured("--epochs", "3", "--output_dir", "runs/x")
    assert (config.train.head_epochs, config.train.fine_tune_epochs) == (3, 0)


def test_lr_auto_switches_the_range_test_on(captured):
    _, config = captured("--lr", "auto", "--output_dir", "x")
    assert config.train.lr is None and config.train.lr_finder
    _, given = captured("--lr", "0.01", "--output_dir", "x")
    assert given.train.lr == 0.01 and not given.train.lr_finder
    result, _ = captured("--lr", "fast", "--output_dir", "x")
    words = " ".join(result.output.replace("│", " ").split())  # unwrapped from rich's box
    assert result.exit_code == 2 and "give a number, e.g. 3e-3, or auto" in words


def test_epochs_with_a_recipe_sets_each_phase_it_trains(captured):
    _, one_phase = captured("--recipe", "mobilenetv2-focal", "--epochs", "3", "--output_dir", "x")
    assert (one_phase.train.head_epochs, one_phase.train.fine_tune_epochs) == (0, 3)
    _, two = captured("--recipe", "vgg16-two-phase", "--epochs", "3", "--fine_tune_epochs", "1",
                      "--output_dir", "x")  # fmt: skip
    assert (two.train.head_epochs, two.train.fine_tune_epochs) == (3, 1)
