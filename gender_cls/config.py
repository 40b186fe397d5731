"""Dataclasses for every option, with the CLI's defaults, checked when built; load and save as JSON.

Each list of allowed values lives here and the CLI's choices import it, so a bad value fails the
same way from the command line, a --config file or a resumed run: a UserError naming the option.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gender_cls import json_text
from gender_cls.atomic import write_text
from gender_cls.errors import UserError

BALANCE_CHOICES = ("none", "oversample", "class_weight", "both")  # both: oversample + weights
RESIZE_CHOICES = ("stretch", "pad")
INPUT_SCALES = ("raw", "unit", "imagenet")  # pixels as fed: 0-255, /255, or torchvision's norm
FILL_MODES = ("nearest", "reflect", "wrap", "constant")
# Head presets that reproduce the seed scripts: ("dense", units) or ("dropout", rate), after GAP.
HEAD_PRESETS = {
    "mobilenet": (("dense", 128), ("dropout", 0.3)),
    "resnet": (("dropout", 0.5), ("dense", 128), ("dropout", 0.3), ("dense", 64)),
    "vgg": (("dense", 256), ("dropout", 0.5)),
    "lite": (("dropout", 0.2),),  # EfficientNet-Lite's own top: dropout, then the output layer
}
HEAD_CHOICES = ("auto", *HEAD_PRESETS)
LOSSES = ("bce", "focal")
THRESHOLD_METRICS = ("f1", "balanced_accuracy", "youden")
STRATEGIES = ("auto", "none", "mirrored", "multiworker")
AUGMENT_PLACEMENTS = ("auto", "gpu", "cpu")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("auto", "plateau", "cosine")  # ReduceLROnPlateau, or warm-up then cosine decay
MONITORS = ("auto", "val_loss", "val_accuracy")
# What lr=None, schedule/monitor="auto" and patience=None mean: from scratch (chosen from the
# measurements in the README) and for a pretrained base (the seed scripts' settings).
SCRATCH_DEFAULTS = {"lr": 3e-3, "schedule": "cosine", "monitor": "val_accuracy", "patience": 10}
PRETRAINED_DEFAULTS = {"lr": 1e-3, "schedule": "plateau", "monitor": "val_loss", "patience": 5}
EXPORTS = ("tflite", "onnx", "none")  # written beside the model at the end of training
FACE_DETECTORS = ("blazeface", "mtcnn")
DISTORTION_KINDS = ("blur", "noise", "fog", "rain", "lowlight", "overexpose", "lowres", "jpeg")
FACE_TEMPLATES = ("auto", "arcface", "dlib")  # auto: the backbone's (faces.TEMPLATES)
FACE_FALLBACKS = ("full", "skip")
AGGREGATES = (
    "max",
    "mean",
)  # a probe against a person: the best or the mean image similarity  # no face found: use the whole image, or leave the image out


class _Checked:
    """Coerces every field to its annotated type and runs `check()`, raising UserError."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        self.check()

    def check(self) -> None:
        """Range and choice checks beyond the type (subclasses)."""

    def _choice(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise UserError(f"option {name}={value!r} is not allowed; choose one of: "
                            f"{', '.join(allowed)}")  # fmt: skip

    def _range(self, name: str, low: float, high: float | None = None, *, open_low=False,
               open_high=False) -> None:  # fmt: skip
        value = getattr(self, name)
        if not math.isfinite(value):
            raise UserError(f"option {name}={value!r} must be a finite number")
        too_low = value <= low if open_low else value < low
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            left, right = "(" if open_low else "[", ")" if open_high else "]"
            bound = f"{left}{low}, {'inf' if high is None else high}{right}"
            raise UserError(f"option {name}={value!r} is out of range; it must lie in {bound}")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """`value` as the annotated type (int, float, bool, str, tuples, optional), or a UserError."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    try:
        if typing.get_origin(hint) is tuple:
            if isinstance(value, str):
                raise ValueError("a list expected")
            items = tuple(value)
            if args[-1] is not Ellipsis and len(items) != len(args):
                raise ValueError(f"{len(args)} values expected")
            return tuple(_coerce(name, v, args[0]) for v in items)
        if hint is bool and isinstance(value, bool):
            return value
        if hint is int and not isinstance(value, bool) and float(value) == int(float(value)):
            return int(float(value))
        if hint is float and not isinstance(value, bool | str):
            return float(value)
        if hint is str and isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    except (TypeError, ValueError):
        pass
    expected = getattr(hint, "__name__", str(hint))
    raise UserError(f"option {name}={value!r} has the wrong type; expected {expected}")


@dataclass
class AugmentConfig(_Checked):
    """Augmentation ranges, named as in Keras' ImageDataGenerator."""

    rotation_range: float = 15.0  # degrees, drawn in [-r, r]
    zoom_range: float = 0.1  # zoom factor drawn in [1 - z, 1 + z] per axis
    shear_range: float = 0.0  # degrees
    width_shift_range: float = 0.1  # fraction of the width (< 1) or pixels (>= 1)
    height_shift_range: float = 0.1
    horizontal_flip: bool = True
    vertical_flip: bool = False
    brightness_range: tuple[float, float] | None = None  # multiplier, e.g. (0.8, 1.2)
    contrast_range: float = 0.0  # contrast factor drawn in [1 - c, 1 + c]
    fill_mode: str = "nearest"
    # What real photos vary in besides light; these run in the input pipeline (OpenCV) only.
    saturation_range: float = 0.0  # colour saturation factor drawn in [1 - s, 1 + s]
    hue_range: float = 0.0  # hue shift drawn in [-h, h] degrees
    grayscale_probability: float = 0.0  # share of images turned grey
    blur_sigma: float = 0.0  # Gaussian blur, sigma drawn in [0, b] pixels of the output
    jpeg_quality: int = 0  # 0: off; else re-encode as JPEG with quality drawn in [q, 95]
    distort_probability: float = 0.0  # share of images given one distortion of distort.py

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation at all (the identity)."""
        return cls(rotation_range=0.0, zoom_range=0.0, width_shift_range=0.0,
                   height_shift_range=0.0, horizontal_flip=False)  # fmt: skip

    @property
    def is_identity(self) -> bool:
        return self == dataclasses.replace(AugmentConfig.off(), fill_mode=self.fill_mode)

    @property
    def has_photo_effects(self) -> bool:
        """Saturation, hue, grey, blur or JPEG: the changes only the input pipeline makes."""
        return any((self.saturation_range, self.hue_range, self.grayscale_probability,
                    self.blur_sigma, self.jpeg_quality, self.distort_probability))  # fmt: skip

    def check(self) -> None:
        self._choice("fill_mode", FILL_MODES)
        self._range("rotation_range", 0, 180)
        self._range("zoom_range", 0, 1, open_high=True)
        self._range("shear_range", 0, 90, open_high=True)
        self._range("width_shift_range", 0)
        self._range("height_shift_range", 0)
        self._range("contrast_range", 0, 1, open_high=True)
        self._range("saturation_range", 0, 1)
        self._range("hue_range", 0, 180)
        self._range("grayscale_probability", 0, 1)
        self._range("blur_sigma", 0, 10)
        self._range("distort_probability", 0, 1)
        if self.jpeg_quality:
            self._range("jpeg_quality", 1, 95)
        low, high = self.brightness_range or (1.0, 1.0)
        if not 0 < low <= high:
            raise UserError(f"option brightness_range={self.brightness_range!r}: give two "
                            "multipliers 0 < low <= high, e.g. 0.8 1.2")  # fmt: skip


@dataclass(frozen=True)
class FaceCrop:
    """What a face crop does, as model.json records it: the detector, the context kept and the
    template the face is aligned to."""

    detector: str = "blazeface"
    margin: float = 0.25
    template: str = "arcface"  # cards written before templates existed mean ArcFace's

    @classmethod
    def read(cls, raw, source: str) -> FaceCrop:
        """The face crop a card or verifier.json records; a one-line UserError naming `source`
        when it is not {detector, margin, template} with known values."""
        try:
            crop = cls(**raw)
        except TypeError:
            raise UserError(f"{source}: face_crop must be {{detector, margin, template}}") from None
        if crop.template not in FACE_TEMPLATES[1:] or crop.detector not in FACE_DETECTORS:
            raise UserError(f"{source}: face_crop {crop.detector!r} / {crop.template!r}: the "
                            f"detector must be one of {', '.join(FACE_DETECTORS)} and the "
                            f"template one of {', '.join(FACE_TEMPLATES[1:])}")  # fmt: skip
        return crop


@dataclass
class DataConfig(_Checked):
    """Where the images are and how they are read, split, batched and balanced."""

    data_path: str = ""
    image_size: int | None = None  # None: the backbone's default size
    val_split: float = 0.2  # used only when the data has no val/ folder
    batch_size: int = 32
    balance: str = "none"
    resize: str = "stretch"  # "stretch" (plain resize) or "pad" (keep aspect, pad)
    cache: bool = False
    seed: int = 42
    face_crop: bool = False  # detect, align and crop the face of every image (faces.py)
    face_detector: str = "blazeface"
    face_margin: float = 0.25  # context around the aligned face, a share of its template box
    face_template: str = "auto"  # where the landmarks are put: auto is the backbone's own
    face_fallback: str = "full"
    face_cache: str | None = None  # where aligned crops are kept [default: RUN/face_cache]

    @property
    def oversample(self) -> bool:
        return self.balance in ("oversample", "both")

    @property
    def class_weighted(self) -> bool:
        return self.balance in ("class_weight", "both")

    def face(self, backbone_template: str) -> FaceCrop | None:
        """What the face crop does, or None when it is off; template "auto" is the backbone's."""
        if not self.face_crop:
            return None
        template = backbone_template if self.face_template == "auto" else self.face_template
        return FaceCrop(self.face_detector, self.face_margin, template)

    def check(self) -> None:
        self._choice("balance", BALANCE_CHOICES)
        self._choice("face_detector", FACE_DETECTORS)
        self._choice("face_fallback", FACE_FALLBACKS)
        self._choice("face_template", FACE_TEMPLATES)
        self._range("face_margin", 0, 1)
        self._choice("resize", RESIZE_CHOICES)
        self._range("val_split", 0, 1, open_low=True, open_high=True)
        self._range("batch_size", 1)
        if self.image_size is not None:
            self._range("image_size", 32)


@dataclass
class ModelConfig(_Checked):
    """Backbone, weights and head of the classifier."""

    backbone: str = "mobilenetv2"
    weights: str = "imagenet"  # "imagenet", "none" or a path to a local weights file
    alpha: float = 1.0  # MobileNet width multiplier
    head: str = "auto"  # a preset name or "auto" (the backbone's preset); head_units wins
    head_units: tuple[int, ...] = ()  # a head of your own: Dense sizes, each with `dropout`
    dropout: float = 0.3

    def check(self) -> None:
        self._choice("head", HEAD_CHOICES)
        self._range("alpha", 0, open_low=True)
        self._range("dropout", 0, 1, open_high=True)
        if any(units < 1 for units in self.head_units):
            raise UserError(f"option head_units={self.head_units!r}: sizes must be positive")


@dataclass
class TrainConfig(_Checked):
    """Two-phase fine-tuning schedule, loss and callbacks."""

    output_dir: str = "runs/latest"
    head_epochs: int = 10
    fine_tune_epochs: int = 0
    fine_tune_layers: str = "auto"  # a number, "auto" (the backbone's default) or "all"
    lr: float | None = None  # None: 1e-3 for a pretrained base's head, 3e-3 from scratch
    lr_finder: bool = False  # --lr auto: the first phase's lr from a range test (lr_finder.py)
    fine_tune_lr: float = 1e-5
    optimizer: str = "adam"
    weight_decay: float | None = None  # None: the optimizer's Keras default (AdamW: 0.004)
    schedule: str = "auto"  # auto: cosine from scratch, plateau for a pretrained base
    warmup_epochs: int = 1  # cosine schedule: linear warm-up to the learning rate first
    ema: bool = False  # keep an exponential moving average of the weights, validate and save it
    mixup: float = 0.0  # MixUp alpha (Keras' MixUp layer on each training batch); 0: off
    monitor: str = (
        "auto"  # what the callbacks watch; auto: val_accuracy from scratch, else val_loss
    )
    loss: str = "bce"
    focal_alpha: float = 0.5
    focal_gamma: float = 1.5
    label_smoothing: float = 0.0
    patience: int | None = None  # EarlyStopping; None: 5, or 10 from scratch
    plateau_factor: float = 0.5  # ReduceLROnPlateau multiplies the LR by this
    threshold_metric: str = "f1"
    calibrate: bool = False  # fit temperature scaling on the validation set after training
    tensorboard: bool = False
    head_augment: bool = True  # False: no augmentation in phase 1, so base features are cached
    strategy: str = "auto"  # tf.distribute
    mixed_precision: bool = False  # mixed_float16 on a GPU; ignored (with a warning) on a CPU
    jit: bool = False  # XLA-compile the training step
    augment_on: str = "auto"  # gpu: in the model on the accelerator; cpu: in tf.data; auto
    export: str = "tflite"  # an export beside the saved model(s), for a fast predict.py
    recipe: str = ""  # the --recipe these options started from (a record; recipes.py)

    def check(self) -> None:
        if self.fine_tune_layers not in ("auto", "all") and not self.fine_tune_layers.isdigit():
            raise UserError(f"option fine_tune_layers={self.fine_tune_layers!r} is not allowed; "
                            "give a number of layers, 'auto' or 'all'")  # fmt: skip
        self._range("head_epochs", 0)
        self._range("fine_tune_epochs", 0)
        if self.lr is not None:
            self._range("lr", 0, open_low=True)
        self._range("fine_tune_lr", 0, open_low=True)
        self._choice("optimizer", OPTIMIZERS)
        if self.weight_decay is not None:
            self._range("weight_decay", 0, 1)
        self._choice("schedule", SCHEDULES)
        self._range("warmup_epochs", 0)
        self._range("mixup", 0, 1)
        self._choice("monitor", MONITORS)
        self._choice("loss", LOSSES)
        self._range("focal_alpha", 0, 1)
        self._range("focal_gamma", 0)
        self._range("label_smoothing", 0, 1, open_high=True)
        if self.patience is not None:
            self._range("patience", 0)
        self._range("plateau_factor", 0, 1, open_low=True, open_high=True)
        self._choice("threshold_metric", THRESHOLD_METRICS)
        self._choice("strategy", STRATEGIES)
        self._choice("augment_on", AUGMENT_PLACEMENTS)
        self._choice("export", EXPORTS)


@dataclass
class RunConfig:
    """Everything a training run needs, saved as config.json in the run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """Build from a dict; unknown keys and bad values are a UserError that names them."""
        parts = {f.name: f.default_factory for f in dataclasses.fields(cls)}
        if not isinstance(raw, dict):
            raise UserError("a run config must be a JSON object with data/augment/model/train")
        unknown = sorted(set(raw) - set(parts))
        if unknown:
            raise UserError(f"unknown config section(s): {', '.join(unknown)}; expected "
                            f"{', '.join(parts)}")  # fmt: skip
        kwargs = {}
        for name, klass in parts.items():
            section = raw.get(name, {})
            if not isinstance(section, dict):
                raise UserError(f"config section '{name}' must be a JSON object of options")
            known = {f.name for f in dataclasses.fields(klass)}
            unknown = sorted(set(section) - known)
            if unknown:
                raise UserError(f"unknown option(s) in config section '{name}': "
                                f"{', '.join(unknown)}")  # fmt: skip
            kwargs[name] = klass(**section)
        return cls(**kwargs)

    def save(self, path: str | Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a config.json; an unreadable file or a bad value names the file."""
        try:
            raw = json_text.loads(Path(path).read_bytes())
        except (OSError, json_text.JsonError) as error:
            raise UserError(f"{path}: cannot read this config ({error})") from None
        try:
            return cls.from_dict(raw)
        except UserError as error:
            raise UserError(f"{path}: {error}") from None


@dataclass
class VerifierOptions:
    embedding_dim: int = 128
    margin: float = 0.35  # CosFace's additive margin on the cosine of the true identity
    scale: float = 30.0
    val_people: float = 0.2  # share of the people held out (never trained on) to tune on
    aggregate: str = "max"  # a probe against an identity: its best or mean image similarity
    loss: str = "cosface"  # or "triplet": semi-hard triplets in batches of K images per person
    images_per_person: int = 4  # K, for the triplet loss
    triplet_margin: float = 0.2  # on squared distances between unit embeddings (0 to 4)
    flip_average: bool = True  # embed an image and its mirror image, and average the two
    face_crop: bool | None = None  # align faces first; None: where the backbone has an embedding
    far: float = 1e-3  # the match threshold: this false accept rate on the held-out people
