"""The backbone registry: keras.applications by name, unknown names, offline downloads."""

from __future__ import annotations

import pytest

from gender_cls.config import ModelConfig
from gender_cls.errors import UserError
from gender_cls.models.backbones import get_backbone
from gender_cls.models.classifier import (
    build_base,
    build_classifier,
)


def test_any_keras_application_by_class_name():
    backbone = get_backbone("efficientnetb0")
    assert backbone.name == "EfficientNetB0"
    model = build_classifier(ModelConfig(backbone="EfficientNetB0", weights="none"), 3, 32)
    assert model.output_shape == (None, 3)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_unknown_backbone_lists_the_valid_names():
    with pytest.raises(UserError, match="unknown backbone 'resnet9000'.*mobilenetv2.*ConvNeXtTiny"):
        get_backbone("resnet9000")


def test_offline_imagenet_download_names_the_file_and_the_fix(monkeypatch):
    from keras.src.utils import file_utils

    def offline(fname, origin, *args, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name unknown")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(
        UserError, match=r"mobilenet_v2.*no_top\.h5.*efficientnet_lite0.*--weights none"
    ):
        build_base(ModelConfig(weights="imagenet", alpha=0.35), 96)
