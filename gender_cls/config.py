"""Dataclasses for every option, with the CLI's defaults; load and save as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BALANCE_CHOICES = ("none", "oversample", "class_weight")
RESIZE_CHOICES = ("stretch", "pad")
FILL_MODES = ("nearest", "reflect", "wrap", "constant")


@dataclass
class AugmentConfig:
    """Augmentation ranges, named as in Keras' ImageDataGenerator."""

    rotation_range: float = 15.0  # degrees, drawn in [-r, r]
    zoom_range: float = 0.1  # zoom factor drawn in [1 - z, 1 + z] per axis
    shear_range: float = 0.0  # degrees
    width_shift_range: float = 0.1  # fraction of the width (< 1) or pixels (>= 1)
    height_shift_range: float = 0.1
    horizontal_flip: bool = True
    brightness_range: tuple[float, float] | None = None  # multiplier, e.g. (0.8, 1.2)
    contrast_range: float = 0.0  # contrast factor drawn in [1 - c, 1 + c]
    fill_mode: str = "nearest"

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation at all (the identity)."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, False, None, 0.0)

    @property
    def is_identity(self) -> bool:
        return self == dataclasses.replace(AugmentConfig.off(), fill_mode=self.fill_mode)

    def __post_init__(self) -> None:
        if self.brightness_range is not None:
            self.brightness_range = tuple(float(v) for v in self.brightness_range)
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {self.fill_mode!r}")


@dataclass
class DataConfig:
    """Where the images are and how they are read, split, batched and balanced."""

    data_path: str = ""
    image_size: int | None = None  # None: the backbone's default size
    val_split: float = 0.2  # used only when the data has no val/ folder
    batch_size: int = 32
    balance: str = "none"
    resize: str = "stretch"  # "stretch" (plain resize) or "pad" (keep aspect, pad)
    cache: bool = False
    seed: int = 42

    def __post_init__(self) -> None:
        if self.balance not in BALANCE_CHOICES:
            raise ValueError(f"balance must be one of {BALANCE_CHOICES}, got {self.balance!r}")
        if self.resize not in RESIZE_CHOICES:
            raise ValueError(f"resize must be one of {RESIZE_CHOICES}, got {self.resize!r}")
        if not 0.0 < self.val_split < 1.0:
            raise ValueError(f"val_split must be between 0 and 1, got {self.val_split}")


@dataclass
class ModelConfig:
    """Backbone, weights and head of the classifier."""

    backbone: str = "mobilenetv2"
    weights: str = "imagenet"  # "imagenet", "none" or a path to a local weights file
    alpha: float = 1.0  # MobileNet width multiplier
    head: str = "auto"  # a preset name, "auto" (the backbone's preset) or "custom"
    head_units: tuple[int, ...] = ()
    dropout: float = 0.3

    def __post_init__(self) -> None:
        self.head_units = tuple(int(u) for u in self.head_units)


@dataclass
class TrainConfig:
    """Two-phase fine-tuning schedule, loss and callbacks."""

    output_dir: str = "runs/latest"
    head_epochs: int = 10
    fine_tune_epochs: int = 0
    fine_tune_layers: str = "auto"  # a number, "auto" (the backbone's default) or "all"
    lr: float = 1e-3
    fine_tune_lr: float = 1e-5
    loss: str = "bce"  # "bce" or "focal"
    focal_alpha: float = 0.5
    focal_gamma: float = 1.5
    label_smoothing: float = 0.0
    patience: int = 5
    threshold_metric: str = "f1"  # "f1", "balanced_accuracy" or "youden"
    tensorboard: bool = False
    head_augment: bool = True  # False: no augmentation in phase 1, so base features are cached
    strategy: str = "auto"  # auto, none, mirrored or multiworker (tf.distribute)
    mixed_precision: bool = False  # mixed_float16 on a GPU; ignored (with a warning) on a CPU
    jit: bool = False  # XLA-compile the training step
    augment_on: str = "auto"  # gpu: in the model on the accelerator; cpu: in tf.data; auto


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
        """Build from a dict; unknown keys are an error that names them."""
        parts = {
            "data": DataConfig,
            "augment": AugmentConfig,
            "model": ModelConfig,
            "train": TrainConfig,
        }
        kwargs = {}
        for name, klass in parts.items():
            section = dict(raw.get(name, {}))
            known = {f.name for f in dataclasses.fields(klass)}
            unknown = sorted(set(section) - known)
            if unknown:
                raise ValueError(f"unknown option(s) in '{name}': {', '.join(unknown)}")
            kwargs[name] = klass(**section)
        unknown = sorted(set(raw) - set(parts))
        if unknown:
            raise ValueError(f"unknown section(s): {', '.join(unknown)}")
        return cls(**kwargs)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
