"""The model options shared by predict, evaluate and serve: parsed once, handed to the
Predictor, and Keras-only settings choosing the Keras model."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from gender_cls.cli.model_options import PREDICTOR_OPTIONS, model_options, predictor_options


@click.command()
@model_options
def probe(**options):
    click.echo(repr(sorted(predictor_options(options).items())))
    click.echo(repr(sorted(options)))


def parsed(*args: str) -> tuple[dict, list]:
    result = CliRunner().invoke(probe, ["--model_path", "run", *args])
    assert result.exit_code == 0, result.output
    chosen, rest = result.output.strip().splitlines()
    return dict(eval(chosen)), eval(rest)  # noqa: S307 (our own repr)


def test_the_predictor_gets_its_options_and_the_command_keeps_the_rest():
    chosen, rest = parsed("--classes", "cat,dog", "--input_mean", "1,2,3", "--input_std", "2",
                          "--tta", "3", "--json")  # fmt: skip
    assert set(chosen) == set(PREDICTOR_OPTIONS)
    assert chosen["classes"] == ["cat", "dog"] and chosen["tta"] == 3
    assert chosen["input_mean"] == (1.0, 2.0, 3.0) and chosen["input_std"] == (2.0,)
    assert chosen["backend"] == "auto" and "as_json" in rest and "model_path" in rest
    assert not set(chosen) & set(rest)


@pytest.mark.parametrize("flag", ["--mixed_precision", "--jit", "--no-jit"])
def test_keras_only_settings_choose_the_keras_model(flag):
    assert parsed(flag)[0]["backend"] == "keras"


def test_bad_values_are_refused_before_anything_loads():
    for args in (["--threshold", "1.5"], ["--tta", "0"], ["--batch_size", "0"],
                 ["--input_mean", "a,b"]):  # fmt: skip
        result = CliRunner().invoke(probe, ["--model_path", "run", *args])
        assert result.exit_code == 2, (args, result.output)
