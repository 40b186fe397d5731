"""Backbone registry and classifier building: weights, preprocessing, heads, freezing, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gender_cls.backbones import FIRST_CLASS, get_backbone
from gender_cls.config import HEAD_PRESETS, ModelConfig, TrainConfig
from gender_cls.errors import UserError
from gender_cls.models import (
    build_base,
    build_classifier,
    freeze_base,
    get_base,
    unfreeze_last,
)
from gender_cls.training import make_loss

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
    """dlib_face_resnet (104 px at least) trains in tests/test_dlib_resnet.py: its whole base under
    --loss distill, a head on it under --recipe faces-offline."""
    model = build_classifier(ModelConfig(backbone=name, **SMALL), 2, 32)
    model.compile("adam", make_loss(TrainConfig(), 2))
    x, y = tiny_batch()
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert model.output_shape == (None, 1)


def test_any_keras_application_by_class_name():
    backbone = get_backbone("efficientnetb0")
    assert backbone.name == "EfficientNetB0"
    model = build_classifier(ModelConfig(backbone="EfficientNetB0", weights="none"), 3, 32)
    assert model.output_shape == (None, 3)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_unknown_backbone_lists_the_valid_names():
    with pytest.raises(UserError, match="unknown backbone 'resnet9000'.*mobilenetv2.*ConvNeXtTiny"):
        get_backbone("resnet9000")


def test_image_size_below_the_minimum_is_a_clear_error():
    with pytest.raises(UserError, match="--image_size 64 does not fit InceptionV3"):
        build_base(ModelConfig(backbone="InceptionV3", weights="none"), 64)


def test_offline_imagenet_download_names_the_file_and_the_fix(monkeypatch):
    from keras.src.utils import file_utils

    def offline(fname, origin, *args, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name unknown")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(
        UserError, match=r"mobilenet_v2.*no_top\.h5.*efficientnet_lite0.*--weights none"
    ):
        build_base(ModelConfig(weights="imagenet", alpha=0.35), 96)


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


def test_focal_losses_are_the_keras_built_ins():
    config = TrainConfig(loss="focal", focal_alpha=0.25, focal_gamma=2.0)
    binary = make_loss(config, 2)
    assert type(binary) is keras.losses.BinaryFocalCrossentropy
    assert binary.alpha == 0.25 and binary.gamma == 2.0
    assert type(make_loss(config, 4)) is keras.losses.CategoricalFocalCrossentropy


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
