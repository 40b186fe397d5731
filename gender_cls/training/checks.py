"""Checks before any image is read: names, weights, classes and options that would fail later."""

from __future__ import annotations

from gender_cls.artifacts.card_fields import plain
from gender_cls.config import (
    AugmentConfig,
    RunConfig,
)
from gender_cls.data.index import (
    discover,
)
from gender_cls.errors import UserError
from gender_cls.faces.detectors import make_detector
from gender_cls.models.backbones import get_backbone
from gender_cls.models.classifier import (
    check_imagenet_weights,
    check_weights_file,
)
from gender_cls.training import multihost


def check_before_work(config: RunConfig, cluster: multihost.Cluster | None = None) -> None:
    """Fail before any image is read on what the dataclasses cannot check alone: the backbone
    name, a local weights file, the data folder and its classes (a flip must not swap two of
    them), ImageNet weights (cached or downloadable) and the face detector."""
    d = config.data
    backbone = get_backbone(config.model.backbone)
    check_weights_file(config.model)
    class_names = discover(d.data_path, d.val_split, d.seed).class_names
    check_class_names(class_names)
    check_flips(class_names, config.augment)
    check_imagenet_weights(config.model, d.image_size or backbone.default_size)
    if d.face_crop:
        make_detector(d.face_detector)
    if cluster is not None:
        _check_multiprocess(config)


def _check_multiprocess(config: RunConfig) -> None:
    """What one process would do over the whole data set is refused with several."""
    if config.data.face_crop:
        raise UserError("with several processes, crop the faces first (gender-cls crop-faces "
                        "SRC DST), then train on DST without --face_crop")  # fmt: skip
    if config.train.lr_finder and config.train.lr is None:
        raise UserError("with several processes, find the learning rate first (gender-cls "
                        "find-lr) and pass it as --lr")  # fmt: skip


def check_class_names(class_names: list[str]) -> None:
    """Each class name must be one the model card will take (card_fields.plain): a folder name
    legal on disk but not in a card would be refused only after training, by prediction."""
    for name in class_names:
        if not plain(name):
            raise UserError(f"class folder {name!r}: a class name must be 1-100 characters with "
                            "no slash, backslash or control character; rename the folder")  # fmt: skip


MIRROR_PAIRS = {  # classes each flip turns into each other
    "horizontal_flip": ("left", "right"),
    "vertical_flip": ("up", "down"),
}


def check_flips(class_names: list[str], augment: AugmentConfig) -> None:
    """A flip would silently swap the labels of mirror-image classes: refuse it."""
    names = {name.lower() for name in class_names}
    for option, pair in MIRROR_PAIRS.items():
        if getattr(augment, option) and set(pair) <= names:
            kind = option.split("_")[0]
            raise UserError(f"classes {pair[0]!r} and {pair[1]!r} swap under a {kind} flip, "
                            f"which would mislabel the flipped images; pass --no-{option}")  # fmt: skip
