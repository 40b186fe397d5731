"""Grad-CAM: maps in [0, 1], where the model looks, every first-class backbone."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.predict.gradcam import GradCam


def square_images(n: int, seed: int):
    """Noise everywhere; label 1 images have a bright square somewhere in their left half."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 120, (n, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    for image, label in zip(images, labels, strict=True):
        if label:
            y, x = rng.integers(2, 22), rng.integers(1, 8)
            image[y : y + 8, x : x + 8] = 255
    return images, labels


@pytest.fixture(scope="module")
def left_half_model():
    """A small classifier shaped like gender_cls's (preprocess -> nested base -> pool -> head),
    trained until it finds the squares."""
    import keras

    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((32, 32, 3)),
                             keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                             keras.layers.Conv2D(8, 3, padding="same", activation="relu")],
                            name="base")  # fmt: skip
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.GlobalMaxPooling2D(name="pool")(base(x))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="output")(x))
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
    images, labels = square_images(400, seed=1)
    model.fit(images, labels, epochs=15, batch_size=32, verbose=0)
    return model


def test_maps_lie_in_zero_one_with_one_per_image(left_half_model):
    images, _ = square_images(6, seed=2)
    maps, probabilities = GradCam(left_half_model).heatmaps(images)
    assert maps.shape == (6, 32, 32) and probabilities.shape == (6, 1)
    assert maps.min() >= 0 and maps.max() <= 1 and np.allclose(maps.max(axis=(1, 2)), 1)


def test_a_model_keyed_on_the_left_half_puts_its_map_there(left_half_model):
    images, labels = square_images(200, seed=3)
    accuracy = ((left_half_model.predict(images, verbose=0)[:, 0] >= 0.5) == labels).mean()
    assert accuracy > 0.9  # it found the squares
    maps, _ = GradCam(left_half_model).heatmaps(images[labels == 1])
    left = maps[:, :, :16].sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
    assert np.median(left) > 0.8


@pytest.mark.parametrize("backbone, side", [
    ("VGG16", 4),  # block5_conv3 (4 x 4), named in its registry row; its output is pooled (2 x 2)
    ("ResNet50", 2),  # the base's output, conv5_block3_out
    ("MobileNetV2", 2),  # out_relu
    ("efficientnet_lite0", 2),  # top_conv_relu6
])  # fmt: skip
def test_every_first_class_backbone_gives_a_map(backbone, side):
    from gender_cls.config import ModelConfig
    from gender_cls.models.classifier import build_classifier

    model = build_classifier(ModelConfig(backbone=backbone, weights="none"), 2, 64)
    maps, _ = GradCam(model, backbone).heatmaps(np.full((2, 64, 64, 3), 100, np.float32))
    assert maps.shape == (2, side, side) and maps.min() >= 0 and maps.max() <= 1
