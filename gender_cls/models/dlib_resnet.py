"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1`) as a Keras model.

Building and loading are two steps: `build` lays out the network of dlib's
`examples/dnn_face_recognition_ex.cpp` with random weights; `models.weights.dlib_resnet` copies
the parsed `.dat` file into it after checking each record against its layer. Conversions that
dlib does differently from Keras' defaults, each measured against dlib itself
(tests/models/test_dlib_resnet.py):
- a convolution of stride 2 pads nothing (Keras "valid"); of stride 1, half the filter ("same");
- `add_prev` adds tensors of different shapes by zero-padding the smaller one at the end of the
  rows, columns and channels: here a Reshape and a ZeroPadding3D (built-in layers, so the saved
  model needs no custom objects);
- `affine` (BatchNorm folded into a scale and shift) is a BatchNormalization layer with mean 0 and
  variance 1 - epsilon, so fine-tuning freezes it as it freezes every BatchNorm;
- the final `fc` (128 outputs, no bias) becomes a 1x1 convolution: the classifier's global average
  pooling after it gives exactly dlib's descriptor (both are linear).
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from gender_cls.errors import UserError

log = logging.getLogger(__name__)

NATIVE_SIZE = 150  # dlib's chips
MEAN_RGB = (122.782, 117.001, 104.298)  # input_rgb_image_sized's, checked against the file
EMBEDDING = 128
BN_EPSILON = 1e-3
# levels from the input up: (filters, residual blocks, whether the first one halves the size)
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


def preprocess(x):
    """dlib's input layer: the mean RGB subtracted, then divided by 256."""
    return (x - np.asarray(MEAN_RGB, np.float32)) / 256.0


def _sequence() -> list[tuple[str, str, dict]]:
    """(dlib kind, Keras layer name, dlib settings) of every layer, in the file's order."""
    same = {"stride_y": 1, "stride_x": 1, "padding_y": 1, "padding_x": 1}
    halve = {"stride_y": 2, "stride_x": 2, "padding_y": 0, "padding_x": 0}

    def con(name, filters, size, geometry):
        return ("con", name, {"num_filters": filters, "nr": size, "nc": size, **geometry})

    seq = [con("stem_conv", 32, 7, halve), ("affine", "stem_affine", {}),
           ("relu", "stem_relu", {}),
           ("max_pool", "stem_pool", {"nr": 3, "nc": 3, **halve})]  # fmt: skip
    for level, (filters, blocks, down) in enumerate(LEVELS, start=1):
        for block in range(1, blocks + 1):
            name = f"level{level}_block{block}"
            first_down = down and block == 1
            seq += [con(f"{name}_conv1", filters, 3, halve if first_down else same),
                    ("affine", f"{name}_affine1", {}), ("relu", f"{name}_relu1", {}),
                    con(f"{name}_conv2", filters, 3, same), ("affine", f"{name}_affine2", {})]  # fmt: skip
            if first_down:
                seq.append(("avg_pool", f"{name}_shortcut_pool", {"nr": 2, "nc": 2, **halve}))
            seq += [("add_prev", f"{name}_add", {}), ("relu", f"{name}_out", {})]
    seq += [("avg_pool", "global_pool", {"nr": 0, "nc": 0, "stride_y": 1, "stride_x": 1,
                                         "padding_y": 0, "padding_x": 0}),
            ("fc", "embedding", {"num_outputs": EMBEDDING, "num_inputs": 256})]  # fmt: skip
    return seq


def _padded(x, shape: tuple[int, int, int], name: str):
    """`x` zero-padded at the end of rows, columns and channels up to `shape` (dlib's add_prev)."""
    rows, cols, channels = x.shape[1:]
    pad = (shape[0] - rows, shape[1] - cols, shape[2] - channels)
    if not any(pad):
        return x
    x = keras.layers.Reshape((rows, cols, channels, 1), name=f"{name}_5d")(x)
    x = keras.layers.ZeroPadding3D(tuple((0, p) for p in pad), name=f"{name}_pad")(x)
    return keras.layers.Reshape(shape, name=f"{name}_4d")(x)


def _add_prev(a, b, name: str):
    shape = tuple(max(p, q) for p, q in zip(a.shape[1:], b.shape[1:], strict=True))
    return keras.layers.Add(name=f"{name}_add")(
        [_padded(a, shape, f"{name}_main"), _padded(b, shape, f"{name}_skip")]
    )


def _conv(x, filters: int, size: int, stride: int, name: str):
    padding = "same" if stride == 1 else "valid"  # dlib: half the filter at stride 1, else none
    if padding == "valid" and x.shape[1] < size:
        raise UserError(f"--image_size too small for dlib_face_resnet ({x.shape[1]} px left "
                        f"before {name}): use 104 or more (150, its own, is the default)")  # fmt: skip
    return keras.layers.Conv2D(filters, size, stride, padding, name=name)(x)


def _affine(x, name: str):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=name)(x)


def build(image_size: int = NATIVE_SIZE, embedding: bool = True) -> keras.Model:
    """The network with random weights; input: pixels as dlib's input layer makes them (see
    `preprocess`). Its output is the 128-channel map whose global average is the descriptor, or
    without `embedding` the 256-channel map before it."""
    inputs = keras.Input((image_size, image_size, 3), name="input")
    x = _conv(inputs, 32, 7, 2, "stem_conv")
    x = keras.layers.ReLU(name="stem_relu")(_affine(x, "stem_affine"))
    x = keras.layers.MaxPooling2D(3, 2, name="stem_pool")(x)
    for level, (filters, blocks, down) in enumerate(LEVELS, start=1):
        for block in range(1, blocks + 1):
            name = f"level{level}_block{block}"
            stride = 2 if down and block == 1 else 1
            y = _conv(x, filters, 3, stride, f"{name}_conv1")
            y = keras.layers.ReLU(name=f"{name}_relu1")(_affine(y, f"{name}_affine1"))
            y = _affine(_conv(y, filters, 3, 1, f"{name}_conv2"), f"{name}_affine2")
            if stride == 2:
                x = keras.layers.AveragePooling2D(2, 2, name=f"{name}_shortcut_pool")(x)
            x = keras.layers.ReLU(name=f"{name}_out")(_add_prev(y, x, name))
    if embedding:
        x = keras.layers.Conv2D(EMBEDDING, 1, use_bias=False, name="embedding")(x)
    return keras.Model(inputs, x, name="dlib_face_resnet")
