"""--recipe: the seed projects' recipes set every option; the command line still wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny_config

from gender_cls.recipes import RECIPES, recipe_table
from gender_cls.training import plan_phases


@pytest.mark.parametrize("name", list(RECIPES))
def test_a_recipe_sets_every_option_it_names(captured, name):
    result, config = captured("--recipe", name, "--output_dir", "runs/x")
    assert result.exit_code == 0, result.output
    for section in ("data", "augment", "model", "train"):
        for option, value in RECIPES[name][section].items():
            assert getattr(getattr(config, section), option) == value, (section, option)
    assert config.train.recipe == name and config.data.data_path == "DATA"


def test_the_command_line_overrides_a_recipe(captured):
    _, config = captured("--recipe", "mobilenetv2-focal", "--batch_size", "8",
                         "--focal_gamma", "2", "--output_dir", "runs/x")  # fmt: skip
    assert config.data.batch_size == 8 and config.train.focal_gamma == 2.0
    assert config.data.balance == "both" and config.train.fine_tune_lr == 1e-5  # the recipe's


def test_epochs_with_a_recipe_sets_each_phase_it_trains(captured):
    _, one_phase = captured("--recipe", "mobilenetv2-focal", "--epochs", "3", "--output_dir", "x")
    assert (one_phase.train.head_epochs, one_phase.train.fine_tune_epochs) == (0, 3)
    _, two = captured("--recipe", "vgg16-two-phase", "--epochs", "3", "--fine_tune_epochs", "1",
                      "--output_dir", "x")  # fmt: skip
    assert (two.train.head_epochs, two.train.fine_tune_epochs) == (3, 1)


def test_recipes_plan_the_seeds_phases(captured):
    _, mobilenet = captured("--recipe", "mobilenetv2-focal", "--output_dir", "x")
    (phase,) = plan_phases(mobilenet)
    assert (phase.name, phase.unfreeze, phase.lr, phase.epochs) == ("fine_tune", "30", 1e-5, 25)
    assert (phase.monitor, phase.patience, phase.schedule) == ("val_accuracy", 5, "plateau")
    _, vgg = captured("--recipe", "vgg16-two-phase", "--output_dir", "x")
    head, fine_tune = plan_phases(vgg)
    assert (head.lr, head.unfreeze, fine_tune.lr, fine_tune.unfreeze) == (1e-4, None, 1e-5, "4")


def test_unknown_recipe_is_exit_2(captured):
    result, _ = captured("--recipe", "alexnet", "--output_dir", "x")
    assert result.exit_code == 2 and "mobilenetv2-focal" in result.output


def test_the_readme_table_is_the_recipes_table():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert recipe_table() in readme


@pytest.mark.slow
def test_a_recipe_trains_end_to_end(two_class_data, trained_run, tmp_path):
    import keras

    from gender_cls.models import get_base
    from gender_cls.recipes import apply_recipe
    from gender_cls.training import train

    base = tmp_path / "base.weights.h5"  # a local "pretrained" base: no download here
    get_base(keras.saving.load_model(trained_run.run_dir / "model.keras")).save_weights(base)
    config = apply_recipe(tiny_config(two_class_data, tmp_path / "run"), "mobilenetv2-focal")
    config.model.weights, config.model.alpha, config.data.image_size = str(base), 0.35, 64
    config.train.fine_tune_epochs, config.data.batch_size = 2, 8
    result = train(config, verbose=0)
    assert len(result.history["loss"]) == 2 and result.phase2_start == 0
    assert result.card.config.train.recipe == "mobilenetv2-focal"
    assert result.card.config.data.balance == "both" and result.card.config.train.loss == "focal"


def test_show_config_prints_the_effective_options_without_training(tmp_path):
    import json

    from click.testing import CliRunner

    from gender_cls.cli import train_command

    args = ["--recipe", "resnet-xray", "--data_path", "DATA", "--output_dir", str(tmp_path / "r"),
            "--show_config"]  # fmt: skip
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["train"]["optimizer"] == "sgd" and shown["train"]["recipe"] == "resnet-xray"
    assert not (tmp_path / "r").exists()
