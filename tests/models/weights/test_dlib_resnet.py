"""dlib's weights into Keras: a foreign network refused layer by layer, other sizes, a cache that
heals."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gender_cls.errors import UserError
from gender_cls.models import dlib_resnet
from gender_cls.models.backbones import get_backbone
from gender_cls.models.weights import dlib_dat
from gender_cls.models.weights import dlib_resnet as dlib_weights

dlib = pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")


@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
def test_a_network_other_than_the_expected_one_is_refused_by_layer():
    network = dlib_dat.read_network(dlib_weights.wheel_file())
    model = dlib_resnet.build(150)
    moved = dict(network.layers[4].settings, stride_y=2)
    layers = list(network.layers)
    layers[4] = dlib_dat.Layer("con", moved, network.layers[4].tensors)
    with pytest.raises(UserError, match=r"dlib layer 4 \(level1_block1_conv1\): stride_y 2"):
        dlib_weights.load_dlib_weights(model, dlib_dat.Network(network.loss, network.input_size,
                                                              network.mean_rgb, layers))  # fmt: skip
    with pytest.raises(UserError, match="of 107 layers, 108 expected"):
        dlib_weights.load_dlib_weights(model, dlib_dat.Network(network.loss, network.input_size,
                                                              network.mean_rgb, layers[:-1]))  # fmt: skip


def test_other_sizes_build_and_the_cache_heals(keras_home, caplog):
    small = get_backbone("dlib_face_resnet").build(112, "imagenet")  # shapes meet unevenly here
    cached = dlib_weights.cache_path(dlib_weights.wheel_file(), embedding=False)
    assert cached.parent == keras_home / "models" and cached.is_file()
    assert small.output.shape[1:] == (1, 1, 256)
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        healed = get_backbone("dlib_face_resnet").build(150, "imagenet")
    assert "unreadable" in caplog.text
    np.testing.assert_array_equal(healed.weights[0].numpy(), small.weights[0].numpy())
    with pytest.raises(UserError, match="too small for dlib_face_resnet"):
        dlib_resnet.build(96)
