"""Build the classifier (raw RGB in, preprocessing, backbone, head, output) and freeze/unfreeze it."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import keras
import tensorflow as tf

from gender_cls.config import HEAD_PRESETS, ModelConfig
from gender_cls.errors import UserError
from gender_cls.models.backbones import Backbone, get_backbone

SCRATCH_BN_MOMENTUM = 0.9
log = logging.getLogger(__name__)


def head_spec(config: ModelConfig, backbone: Backbone) -> tuple[tuple[str, float], ...]:
    """The head layers: --head_units/--dropout when given, else a preset by name."""
    if config.head_units:
        return tuple(
            layer
            for units in config.head_units
            for layer in (("dense", units), ("dropout", config.dropout))
        )
    return HEAD_PRESETS[backbone.head if config.head == "auto" else config.head]


def from_scratch(config: ModelConfig) -> bool:
    return config.weights.lower() == "none"


def check_weights_file(config: ModelConfig) -> None:
    """A --weights that is neither imagenet nor none must be an existing file."""
    path = config.weights
    if path.lower() not in ("imagenet", "none") and not Path(path).is_file():
        raise UserError(f"{path}: weights file not found; use --weights imagenet, none or a file")


def check_imagenet_weights(config: ModelConfig, image_size: int) -> None:
    """With --weights imagenet, the weights file is in Keras' cache (~/.keras/models/) or
    downloads now; a UserError otherwise."""
    if config.weights.lower() == "imagenet":
        get_backbone(config.backbone).build(image_size, "imagenet", config.alpha)
        keras.backend.clear_session()


def load_base_weights(base: keras.Model, path: str) -> None:
    """Load a local .h5 / .weights.h5 file into the base; errors say what to pass instead."""
    try:
        base.load_weights(path)
    except Exception as error:  # h5py and Keras raise many types for a bad file
        raise UserError(
            f"{path}: cannot load these weights into {base.name} ({error}); pass weights saved "
            "from the same backbone, alpha and image size, or --weights none"
        ) from None


def build_base(
    config: ModelConfig, image_size: int, load_weights: bool = True, embedding: bool = False
) -> tuple[keras.Model, Backbone]:
    """The headless backbone with the configured weights (random ones without `load_weights`);
    `embedding`: up to the backbone's own face embedding, where it has one."""
    backbone = get_backbone(config.backbone)
    weights = "imagenet" if config.weights.lower() == "imagenet" and load_weights else None
    base = backbone.build(image_size, weights, config.alpha, embedding)
    if weights is None and not from_scratch(config) and load_weights:
        check_weights_file(config)
        load_base_weights(base, config.weights)
    if from_scratch(config):
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = SCRATCH_BN_MOMENTUM
    return base, backbone


def pooled_features(
    config: ModelConfig, image_size: int, load_weights: bool = True, embedding: bool = False
):
    """(inputs, pooled base features, backbone): raw RGB pixels in [0, 255] -> the backbone's
    preprocessing as a layer -> base -> global average pooling; what every model here starts
    with. A pretrained base is called with training=False so BatchNorm keeps its statistics."""
    base, backbone = build_base(config, image_size, load_weights, embedding)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    preprocess = keras.layers.Dense(3, name="preprocess", trainable=False)
    x = preprocess(inputs)
    preprocess.set_weights(list(backbone.preprocess_affine()))
    x = base(x) if from_scratch(config) else base(x, training=False)
    return inputs, keras.layers.GlobalAveragePooling2D(name="pool")(x), backbone


def build_classifier(
    config: ModelConfig, num_classes: int, image_size: int, load_weights: bool = True
) -> keras.Model:
    """Raw RGB pixels in [0, 255] -> preprocess -> base -> GAP -> head -> sigmoid or softmax.

    A pretrained base is called with training=False so BatchNorm keeps its statistics; a base
    trained from scratch runs BatchNorm in training mode with a lower momentum.
    """
    inputs, x, backbone = pooled_features(config, image_size, load_weights)
    for i, (kind, value) in enumerate(head_spec(config, backbone)):
        if kind == "dense":
            x = keras.layers.Dense(int(value), activation="relu", name=f"head_dense_{i}")(x)
        else:
            x = keras.layers.Dropout(float(value), name=f"head_dropout_{i}")(x)
    if num_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="output")(x)
    else:
        outputs = keras.layers.Dense(
            num_classes, activation="softmax", dtype="float32", name="output"
        )(x)
    return keras.Model(inputs, outputs, name=f"{backbone.name.lower()}_classifier")


def get_base(model: keras.Model) -> keras.Model:
    """The nested backbone model inside a classifier."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise ValueError(f"{model.name} has no nested base model")


def freeze_base(model: keras.Model) -> None:
    get_base(model).trainable = False


def unfreeze_last(model: keras.Model, n_layers: int | str) -> int:
    """Unfreeze the last n layers of the base ("all": every layer); BatchNorm stays frozen.

    Returns how many layers were unfrozen (BatchNorm layers among the last n not counted).
    """
    base = get_base(model)
    total = len(base.layers)
    n = total if n_layers == "all" else int(n_layers)
    if n > total:
        raise UserError(
            f"--fine_tune_layers {n} is larger than the base ({base.name} has {total} layers); "
            "pass a smaller number or 'all'"
        )
    base.trainable = True
    unfrozen = 0
    for index, layer in enumerate(base.layers):
        in_tail = index >= total - n
        layer.trainable = in_tail and not isinstance(layer, keras.layers.BatchNormalization)
        unfrozen += int(layer.trainable)
    return unfrozen


@contextmanager
def precision_policy(mixed: bool):
    """mixed_float16 while building the model when asked for and a GPU is present."""

    if mixed and not tf.config.list_physical_devices("GPU"):
        log.warning("--mixed_precision ignored: no GPU found (float16 is slow on CPUs)")
        mixed = False
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def copy_classifier(
    model: keras.Model, config: ModelConfig, num_classes: int, image_size: int, mixed: bool = False
) -> keras.Model:
    """`model` rebuilt with float32 (or, on a GPU, mixed_float16) compute, its weights copied in;
    nothing is downloaded or loaded from the weights option."""
    with precision_policy(mixed):
        copy = build_classifier(config, num_classes, image_size, load_weights=False)
    copy.set_weights(model.get_weights())
    return copy
