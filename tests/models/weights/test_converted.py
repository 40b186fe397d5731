"""The converted-weights cache: converted once, loaded after, a damaged file converted again,
and a cache that cannot be written only warns."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

from gender_cls.models.weights.converted import cache_dir, load_or_convert


def small_model() -> keras.Model:
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(inputs))


def filler(model: keras.Model, calls: list):
    """A stand-in for a foreign format: fixed weights, counting how often it runs."""

    def convert():
        calls.append(1)
        model.get_layer("dense").set_weights([np.full((4, 3), 0.5, np.float32),
                                              np.arange(3, dtype=np.float32)])  # fmt: skip

    return convert


def test_converted_once_then_loaded_and_a_damaged_cache_is_converted_again(tmp_path, caplog):
    cached, calls = tmp_path / "models" / "small.weights.h5", []
    first = small_model()
    load_or_convert(first, cached, filler(first, calls))
    assert calls == [1] and cached.is_file()
    second = small_model()
    load_or_convert(second, cached, filler(second, calls))
    assert calls == [1]  # from the cache
    np.testing.assert_array_equal(second.get_weights()[1], [0, 1, 2])
    cached.write_bytes(cached.read_bytes()[:200])
    third = small_model()
    with caplog.at_level(logging.WARNING):
        load_or_convert(third, cached, filler(third, calls))
    assert calls == [1, 1] and "unreadable" in caplog.text
    np.testing.assert_array_equal(third.get_weights()[1], [0, 1, 2])
    load_or_convert(small_model(), cached, filler(small_model(), calls))
    assert calls == [1, 1]  # the rewritten cache loads


def test_a_cache_that_cannot_be_written_only_warns(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    model, calls = small_model(), []
    with caplog.at_level(logging.WARNING):
        load_or_convert(model, blocker / "small.weights.h5", filler(model, calls))
    assert calls == [1] and "could not cache" in caplog.text
    np.testing.assert_array_equal(model.get_weights()[1], [0, 1, 2])


def test_the_cache_follows_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert cache_dir() == tmp_path / "keras" / "models"
    monkeypatch.delenv("KERAS_HOME")
    assert cache_dir().name == "models" and cache_dir().parent.name == ".keras"


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
