"""Recipes: what they set, the phases they plan, the README table, a run end to end."""

from __future__ import annotations

import pytest

from gender_cls.training.phases import plan_phases
from gender_cls.training.recipes import RECIPES, recipe_table
from tests.helpers import REPO, tiny_config


@pytest.mark.parametrize("name", list(RECIPES))
def test_a_recipe_sets_every_option_it_names(captured, name):
    result, config = captured("--recipe", name, "--output_dir", "runs/x")
    assert result.exit_code == 0, result.output
    for section in ("data", "augment", "model", "train"):
        for option, value in RECIPES[name][section].items():
            assert getattr(getattr(config, section), option) == value, (section, option)
    assert config.train.recipe == name and config.data.data_path == "DATA"


def test_recipes_plan_the_seeds_phases(captured):
    _, mobilenet = captured("--recipe", "mobilenetv2-focal", "--output_dir", "x")
    (phase,) = plan_phases(mobilenet)
    assert (phase.name, phase.unfreeze, phase.lr, phase.epochs) == ("fine_tune", "30", 1e-5, 25)
    assert (phase.monitor, phase.patience, phase.schedule) == ("val_accuracy", 5, "plateau")
    _, vgg = captured("--recipe", "vgg16-two-phase", "--output_dir", "x")
    head, fine_tune = plan_phases(vgg)
    assert (head.lr, head.unfreeze, fine_tune.lr, fine_tune.unfreeze) == (1e-4, None, 1e-5, "4")


def test_the_readme_table_is_the_recipes_table():
    readme = (REPO / "README.md").read_text()
    assert recipe_table() in readme


@pytest.mark.slow
def test_a_recipe_trains_end_to_end(two_class_data, tmp_path):

    from gender_cls.config import ModelConfig
    from gender_cls.models.classifier import build_classifier, get_base
    from gender_cls.training.recipes import apply_recipe
    from gender_cls.training.run import train

    base = tmp_path / "base.weights.h5"  # a local "pretrained" base: no download here
    get_base(build_classifier(ModelConfig(weights="none", alpha=0.35), 2, 64)).save_weights(base)
    config = apply_recipe(tiny_config(two_class_data, tmp_path / "run"), "mobilenetv2-focal")
    config.model.weights, config.model.alpha, config.data.image_size = str(base), 0.35, 64
    config.train.fine_tune_epochs, config.data.batch_size = 2, 8
    result = train(config, verbose=0)
    assert len(result.history["loss"]) == 2 and result.phase2_start == 0
    assert result.card.config.train.recipe == "mobilenetv2-focal"
    assert result.card.config.data.balance == "both" and result.card.config.train.loss == "focal"
