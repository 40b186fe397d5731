"""What a model expects around its pixels: scaling, channel order and layout on the way in;
probabilities or logits on the way out. A gender_cls model needs none of it (its card says
"raw"); models from other toolkits (PyTorch exports in particular) need the options here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gender_cls.config import INPUT_SCALES
from gender_cls.errors import UserError

SCALE_PRESETS = {  # (mean, std) per RGB channel, on pixels 0-255: x' = (x - mean) / std
    "raw": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "unit": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),  # torchvision's
}
assert tuple(SCALE_PRESETS) == INPUT_SCALES  # the names a card may hold (config.py)
OUTPUT_KINDS = ("auto", "probabilities", "logits")


def _three(values, name: str) -> tuple[float, float, float] | None:
    """One value or three (R, G, B) as a 3-tuple of floats."""
    if values is None:
        return None
    values = tuple(float(v) for v in values)
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise UserError(f"--{name} takes one value or three (R,G,B), got {len(values)}")
    return values


@dataclass(frozen=True)
class InputSpec:
    """Pixels in [0, 255], RGB, (N, H, W, 3) -> what the model takes."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    bgr: bool = False
    channels_first: bool = False  # (N, 3, H, W), as PyTorch exports are

    @classmethod
    def build(cls, scale: str = "raw", mean=None, std=None, bgr=False, channels_first=False):
        """A preset scale, with --input_mean/--input_std overriding its mean or std."""
        if scale not in SCALE_PRESETS:
            raise UserError(
                f"--input_scale must be one of {', '.join(INPUT_SCALES)}, got {scale!r}"
            )
        preset_mean, preset_std = SCALE_PRESETS[scale]
        std = _three(std, "input_std") or preset_std
        if 0.0 in std:
            raise UserError("--input_std must not be 0")
        return cls(_three(mean, "input_mean") or preset_mean, std, bgr, channels_first)

    @property
    def tensor_safe(self) -> bool:
        """apply() also works on a tf.data tensor (it transposes only NumPy arrays)."""
        return not self.channels_first

    def apply(self, images):
        """Normalise, reorder channels and transpose a batch of RGB pixels."""
        x = (images - np.float32(self.mean)) / np.float32(self.std)
        if self.bgr:
            x = x[..., ::-1]
        if self.channels_first:
            x = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
        return x

    def describe(self) -> str:
        for name, (mean, std) in SCALE_PRESETS.items():
            if (mean, std) == (self.mean, self.std):
                text = {"raw": "pixels 0-255", "unit": "pixels /255"}.get(name, f"{name} mean/std")
                break
        else:
            text = f"(pixels - {_fmt(self.mean)}) / {_fmt(self.std)}"
        text += ", BGR" if self.bgr else ""
        return text + (", channels first (N, 3, H, W)" if self.channels_first else "")


def _fmt(values: tuple[float, ...]) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else ",".join(f"{v:g}" for v in values)


def is_channels_first(shape: tuple) -> bool:
    """An (N, 3, H, W) input: three channels first and not last."""
    return len(shape) == 4 and shape[1] == 3 and shape[3] != 3


def look_like_probabilities(scores: np.ndarray) -> bool:
    """Sigmoid outputs lie in [0, 1]; softmax rows are also non-negative and sum to 1."""
    scores = np.asarray(scores, np.float64)
    if scores.min() < 0 or scores.max() > 1:
        return False
    return scores.shape[-1] == 1 or bool(np.allclose(scores.sum(axis=-1), 1.0, atol=1e-3))


def to_probabilities(scores: np.ndarray) -> np.ndarray:
    """Logits -> probabilities: sigmoid for one output, softmax for several."""
    scores = np.asarray(scores, np.float64)
    if scores.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-scores))
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
