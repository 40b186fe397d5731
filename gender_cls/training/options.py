"""The options of a run, as the CLI and the Python API take them, turned into a RunConfig.

Precedence: the dataclasses' defaults < a `config` file < a `recipe` < the options given. What
`epochs` means depends on the recipe: without one it is the head phase's length; with one, the
length of each phase the recipe trains."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from gender_cls.config import AugmentConfig, RunConfig, TrainConfig
from gender_cls.errors import UserError
from gender_cls.training.recipes import SECTIONS, apply_recipe

# options that are no field of a section: what they do is below
SPECIAL = ("config", "recipe", "epochs", "no_augment")


def option_names() -> set[str]:
    """Every option run_config understands."""
    fields = {f.name for s in SECTIONS for f in dataclasses.fields(getattr(RunConfig(), s))}
    return fields | set(SPECIAL)


def run_config(options: dict, given: Collection[str] | None = None) -> RunConfig:
    """The RunConfig `options` describe. `given`: the names the user set (the CLI's explicit
    flags); None means every key of `options`. With a config file or a recipe, only given
    options override them; without, every option applies. `lr` "auto" asks for the range test."""
    given = set(options) if given is None else set(given)
    options = dict(options)
    auto_lr = options.get("lr") == "auto"
    if auto_lr:
        options["lr"] = None
    config = RunConfig.load(options["config"]) if options.get("config") else RunConfig()
    recipe = options.get("recipe")
    if recipe:
        config = apply_recipe(config, recipe)
    only_given = bool(options.get("config") or recipe)  # else every default applies too
    sections = {}
    for name in SECTIONS:
        section = getattr(config, name)
        changes = {}
        for f in dataclasses.fields(section):
            if f.name not in options or (options[f.name] is None and f.default is not None):
                continue  # not an option here, or not given (data_path with resume)
            if f.name in given or not only_given:
                changes[f.name] = options[f.name]
        sections[name] = dataclasses.replace(section, **changes)
    if options.get("epochs") is not None:
        sections["train"] = _epochs(options["epochs"], sections["train"], bool(recipe), given)
    config = RunConfig(**sections)
    if options.get("no_augment"):
        config.augment = AugmentConfig.off()
    if auto_lr:
        config.train.lr, config.train.lr_finder = None, True
    return config


def ignored_on_resume(given: Collection[str]) -> list[str]:
    """The options among `given` that a resumed run does not take: it continues as its own
    config.json says (everything but where the run is)."""
    return sorted((set(given) & option_names()) - {"output_dir"})


def checked_options(options: dict) -> dict:
    """`options` of the Python API, refused by name where run_config does not know one."""
    unknown = sorted(set(options) - option_names())
    if unknown:
        raise UserError(f"unknown training option {unknown[0]!r}; the options are those of "
                        "gender-cls train --help, spelled with underscores")  # fmt: skip
    return options


def _epochs(n: int, train: TrainConfig, recipe: bool, given: set[str]) -> TrainConfig:
    """epochs N: the head phase only, like the seeds; with a recipe, N epochs for each phase the
    recipe trains. head_epochs / fine_tune_epochs given as well win."""
    head, fine_tune = (n if train.head_epochs else 0, n if train.fine_tune_epochs else 0)
    if not recipe:
        head, fine_tune = n, 0
    for name, value in (("head_epochs", head), ("fine_tune_epochs", fine_tune)):
        if name not in given:
            train = dataclasses.replace(train, **{name: value})
    return train
