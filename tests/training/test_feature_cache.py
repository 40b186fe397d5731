"""The feature cache of a frozen head phase."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gender_cls.config import ModelConfig
from gender_cls.data.index import discover
from gender_cls.models.classifier import build_classifier, freeze_base, get_base
from gender_cls.training import feature_cache
from gender_cls.training.phases import _cached_head
from gender_cls.training.run import train
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow  # every test here trains a model


def test_head_on_features_is_the_full_model_and_shares_its_weights():
    model = build_classifier(ModelConfig(weights="none", alpha=0.35), 2, 32)
    freeze_base(model)
    features, head = feature_cache.split_model(model)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(head.predict(features.predict(x, verbose=0), verbose=0),
                               model.predict(x, verbose=0), atol=1e-5)  # fmt: skip
    head.compile("adam", "binary_crossentropy")
    before = model.get_layer("output").get_weights()[0].copy()
    head.fit(features.predict(x, verbose=0), np.ones((4, 1)), epochs=2, verbose=0)
    assert not np.allclose(model.get_layer("output").get_weights()[0], before)


def test_cached_phase_one_then_fine_tuning(two_class_data, trained_run, tmp_path):
    base_weights = tmp_path / "base.weights.h5"
    get_base(keras.saving.load_model(trained_run.run_dir / "model.keras")).save_weights(
        base_weights
    )
    config = tiny_config(two_class_data, tmp_path / "cached", head_epochs=3, fine_tune_epochs=1,
                         fine_tune_layers="10", head_augment=False)  # fmt: skip
    config.model.weights = str(base_weights)
    config.data.balance = "oversample"
    result = train(config, verbose=0)
    assert len(result.history["loss"]) == 4 and result.phase2_start == 3
    assert result.card.validation["at_threshold"]["accuracy"] > 0.8  # a trained base


def test_cached_head_batches_with_the_global_batch(two_class_data, tmp_path):
    # Under a strategy with two replicas the image datasets use 2 x --batch_size; so must the cache.
    config = tiny_config(two_class_data, tmp_path / "run")
    model = build_classifier(config.model, 2, 64)
    freeze_base(model)
    index = discover(two_class_data)
    _, train_ds, val_ds = _cached_head(model, index, config, 64, 2 * config.data.batch_size)
    for ds in (train_ds, val_ds):
        features, _ = next(iter(ds))
        assert features.shape[0] == 2 * config.data.batch_size
