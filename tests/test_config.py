"""The option dataclasses: range checks naming the option, JSON coercion, bad files."""

from __future__ import annotations

import pytest

from gender_cls.config import (
    RunConfig,
)
from gender_cls.errors import UserError


@pytest.mark.parametrize("raw, message", [
    ({"train": {"loss": "mse"}}, "loss='mse' is not allowed; choose one of: bce, focal"),
    ({"train": 5}, "config section 'train' must be a JSON object"),
    ({"train": {"fine_tune_layers": "abc"}}, "fine_tune_layers='abc'"),
    ({"train": {"head_epochs": "ten"}}, "head_epochs='ten' has the wrong type; expected int"),
    ({"train": {"head_epochs": 2.5}}, "head_epochs=2.5 has the wrong type"),
    ({"train": {"lr": 0}}, "lr=0.0 is out of range; it must lie in (0, inf]"),
    ({"train": {"lr": float("inf")}}, "lr=inf must be a finite number"),
    ({"train": {"lr": float("nan")}}, "lr=nan must be a finite number"),
    ({"augment": {"rotation_range": float("nan")}}, "rotation_range=nan must be a finite"),
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


@pytest.mark.parametrize("data, reason", [
    (b"{not json", "Expecting property name"),
    (b'\xff\xfe{"data": {}}', "not UTF-8 text: byte 0"),  # was a UnicodeDecodeError traceback
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # was a RecursionError traceback
])  # fmt: skip
def test_a_config_file_that_is_not_json_names_the_file(tmp_path, data, reason):
    path = tmp_path / "config.json"
    path.write_bytes(data)
    with pytest.raises(UserError, match=f"config.json: cannot read this config \\({reason}"):
        RunConfig.load(path)
