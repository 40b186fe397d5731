"""The classifier: every first-class backbone builds and trains, heads, weights files,
preprocessing inside."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gender_cls.config import HEAD_PRESETS, ModelConfig, TrainConfig
from gender_cls.errors import UserError
from gender_cls.models.backbones import FIRST_CLASS, get_backbone
from gender_cls.models.classifier import (
    build_base,
    build_classifier,
    freeze_base,
    get_base,
    unfreeze_last,
)
from gender_cls.training.phases import make_loss

SMALL = dict(weights="none", alpha=0.35)


def tiny_batch(n=4, size=32, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size, size, 3)).astype("float32")
    labels = rng.integers(0, classes, n)
    y = labels[:, None].astype("float32") if classes == 2 else np.eye(classes)[labels]
    return x, y


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(FIRST_CLASS) - {"dlib_face_resnet"}))
def test_first_class_backbones_build_and_train_one_step(name):
    """One real gradient step through each whole network, run eagerly: tracing the step of a
    large network costs 20-60 s on 2 cores and tests nothing the step does not (training in
    graph mode is what every run test does). dlib_face_resnet (104 px at least) trains in
    tests/cli/test_verify.py (its whole base, --loss distill) and tests/cli/test_train.py (a head
    on it, --recipe faces-offline)."""
    model = build_classifier(ModelConfig(backbone=name, **SMALL), 2, 32)
    model.compile("adam", make_loss(TrainConfig(), 2), run_eagerly=True)
    x, y = tiny_batch()
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert model.output_shape == (None, 1)


def test_image_size_below_the_minimum_is_a_clear_error():
    with pytest.raises(UserError, match="--image_size 64 does not fit InceptionV3"):
        build_base(ModelConfig(backbone="InceptionV3", weights="none"), 64)


def test_local_weights_file_is_loaded_into_the_base(tmp_path):
    source, _ = build_base(ModelConfig(**SMALL), 32)
    path = tmp_path / "base.weights.h5"
    source.save_weights(path)
    model = build_classifier(ModelConfig(weights=str(path), alpha=0.35), 2, 32)
    for a, b in zip(get_base(model).weights, source.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_unreadable_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="bad.h5: cannot load these weights"):
        build_classifier(ModelConfig(weights=str(bad), alpha=0.35), 2, 32)
    with pytest.raises(UserError, match="weights file not found"):
        build_classifier(ModelConfig(weights=str(tmp_path / "missing.h5")), 2, 32)


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet50"])
def test_preprocessing_layer_matches_preprocess_input(name):
    backbone = get_backbone(name)
    model = build_classifier(ModelConfig(backbone=name, **SMALL), 2, 32)
    x, _ = tiny_batch()
    inside = keras.Model(model.input, model.get_layer("preprocess").output)(x)
    expected = backbone.preprocess_input()(x.copy())
    np.testing.assert_allclose(np.asarray(inside), expected, atol=1e-3)


def test_saved_model_loads_in_safe_mode_and_predicts_raw_uint8(tmp_path):
    model = build_classifier(ModelConfig(**SMALL), 2, 32)
    model.compile("adam", make_loss(TrainConfig(loss="focal"), 2))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True by default
    assert isinstance(loaded.loss, keras.losses.BinaryFocalCrossentropy)
    pixels = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        loaded.predict(pixels, verbose=0), model.predict(pixels, verbose=0), atol=1e-5
    )


def test_phase_two_unfreezes_exactly_n_layers_and_keeps_batchnorm_frozen():
    model = build_classifier(ModelConfig(**SMALL), 2, 32)
    base = get_base(model)
    freeze_base(model)
    assert not any(layer.trainable for layer in base.layers) or not base.trainable
    unfrozen = unfreeze_last(model, 20)
    tail = base.layers[-20:]
    batchnorms = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in tail)
    assert unfrozen == 20 - batchnorms
    assert all(not layer.trainable for layer in base.layers[:-20])
    assert all(
        layer.trainable != isinstance(layer, keras.layers.BatchNormalization) for layer in tail
    )
    with pytest.raises(UserError, match="larger than the base"):
        unfreeze_last(model, len(base.layers) + 1)


def test_head_presets_and_custom_head():
    for preset, spec in HEAD_PRESETS.items():
        model = build_classifier(ModelConfig(head=preset, **SMALL), 2, 32)
        dense = [l for l in model.layers if l.name.startswith("head_dense")]  # noqa: E741
        assert [l.units for l in dense] == [v for k, v in spec if k == "dense"]  # noqa: E741
    custom = build_classifier(ModelConfig(head_units=(32, 16), dropout=0.2, **SMALL), 2, 32)
    assert [l.units for l in custom.layers if l.name.startswith("head_dense")] == [32, 16]  # noqa: E741
