"""EfficientNet-Lite0/1/2 as Keras models (the architecture only: `models.weights.efficientnet_lite`
loads their ImageNet weights)."""

from __future__ import annotations

import logging
import math

import keras

log = logging.getLogger(__name__)

# (width, depth, default size) per variant, from the TensorFlow EfficientNet-Lite builder
VARIANTS = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260)}
# stages: (repeats, kernel, stride, expand ratio, input filters, output filters)
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS, HEAD_FILTERS = 32, 1280  # fixed in Lite: not scaled with the width
BN_EPSILON = 1e-3
IMAGENET_CLASSES = 1000


def _round_filters(filters: int, width: float) -> int:
    """Channels scaled by the width multiplier, rounded to a multiple of 8 (never 10% below)."""
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


def block_plan(variant: int) -> list[tuple[str, int, int, int, int, int]]:
    """Every MBConv block in order: (name, kernel, stride, expand, in filters, out filters).
    The first and last stages keep their repeats (Lite fixes the stem and head)."""
    width, depth, _ = VARIANTS[variant]
    plan = []
    for stage, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(STAGES):
        fixed = stage in (0, len(STAGES) - 1)
        filters_in = STEM_FILTERS if stage == 0 else _round_filters(filters_in, width)
        filters_out = _round_filters(filters_out, width)
        for r in range(repeats if fixed else math.ceil(depth * repeats)):
            name = f"block{stage + 1}{chr(ord('a') + r)}"
            plan.append((name, kernel, stride if r == 0 else 1, expand,
                         filters_in if r == 0 else filters_out, filters_out))  # fmt: skip
    return plan


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, padding: str, eps: float,
             depthwise: bool = False, activate: bool = True):  # fmt: skip
    """Convolution (padded "same" as TensorFlow, or symmetric), BatchNorm, ReLU6."""
    if padding == "symmetric" and stride > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        mode = "valid"
    else:
        mode = "same"
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, mode, use_bias=False, name=name)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, mode, use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(epsilon=eps, momentum=0.99, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if activate else x


def build(variant: int, image_size: int, include_top: bool = False, padding: str = "same",
          bn_epsilon: float = BN_EPSILON) -> keras.Model:  # fmt: skip
    """EfficientNet-Lite with random weights; input: pixels normalised as (x - 127) / 128.
    Without the top its output is the 1280-channel map of the head convolution."""
    inputs = keras.Input((image_size, image_size, 3), name="input")
    x = _conv_bn(inputs, STEM_FILTERS, 3, 2, "stem_conv", padding, bn_epsilon)
    for name, kernel, stride, expand, filters_in, filters_out in block_plan(variant):
        block_input = x
        if expand != 1:
            x = _conv_bn(x, filters_in * expand, 1, 1, f"{name}_expand_conv", padding, bn_epsilon)
        x = _conv_bn(x, 0, kernel, stride, f"{name}_dwconv", padding, bn_epsilon, depthwise=True)
        x = _conv_bn(x, filters_out, 1, 1, f"{name}_project_conv", padding, bn_epsilon,
                     activate=False)  # fmt: skip
        if stride == 1 and filters_in == filters_out:
            x = keras.layers.Add(name=f"{name}_add")([x, block_input])
    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "top_conv", padding, bn_epsilon)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(IMAGENET_CLASSES, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=f"efficientnet_lite{variant}")
