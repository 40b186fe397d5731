"""Read a dlib DNN file (`.dat`, as `dlib::serialize(net)` writes it) into NumPy arrays, without
dlib and without executing anything from the file.

dlib writes a network as nested wrappers: the loss, then one version number per wrapper (an
`add_layer`, `add_tag_layer` or `add_skip_layer`), then the input layer, then each computing
layer's record in forward order (its name and settings, its parameters, and the cached tensors
of training). Tags and skips store nothing but their version, so the graph itself (which output
a skip or `add_prev` refers to) is not in the file: the builder of the network knows it, and
checks every record it receives against its own layer. Formats from dlib's `serialize.h`,
`dnn/core.h`, `dnn/layers.h`, `dnn/input.h` and `cuda/tensor.h`; only the layer kinds below are
read, any other is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cls.errors import UserError

MAX_NAME = 64  # the longest layer name dlib writes is far shorter
MAX_WRAPPERS = 10_000  # a network this deep is not a face embedding
FLOAT_SPECIAL = {32000: np.inf, 32001: -np.inf, 32002: np.nan}  # dlib's float_details exponents


class DatError(ValueError):
    """The file is not a dlib network this reader accepts (the message says where and why)."""


@dataclass(frozen=True)
class Layer:
    """One computing layer: its kind ("con", "affine", "relu", "add_prev", "max_pool",
    "avg_pool", "fc"), its settings (ints) and its parameters (float32 arrays)."""

    kind: str
    settings: dict[str, int] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Network:
    """A dlib network as read: the loss's name, the input layer, the layers in forward order."""

    loss: str
    input_size: tuple[int, int]  # rows, columns of input_rgb_image_sized
    mean_rgb: tuple[float, float, float]  # subtracted before dividing by 256
    layers: list[Layer]


class _Stream:
    """A cursor over the file's bytes; every read checks that the bytes are there."""

    def __init__(self, data: bytes):
        self.data, self.pos = memoryview(data), 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise DatError(f"the file ends inside {what} at byte {self.pos} (truncated)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self, what: str = "an integer") -> int:
        """dlib's packed integer: a control byte (low 4 bits: byte count, 0x80: negative), then
        the magnitude in little-endian bytes."""
        control = self.take(1, what)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise DatError(f"byte {self.pos - 1} is not an integer's control byte ({what})")
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def float(self, what: str) -> float:
        """A float written as a packed mantissa and a packed exponent (dlib's float_details)."""
        mantissa, exponent = self.int(what), self.int(what)
        if exponent in FLOAT_SPECIAL:
            return float(FLOAT_SPECIAL[exponent])
        if abs(exponent) > 2000:
            raise DatError(f"{what}: exponent {exponent} out of range")
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self, what: str) -> bool:
        byte = bytes(self.take(1, what))
        if byte not in (b"0", b"1"):
            raise DatError(f"byte {self.pos - 1} is not a bool ({what})")
        return byte == b"1"

    def string(self, what: str, limit: int = MAX_NAME) -> str:
        size = self.int(what)
        if not 0 <= size <= limit:
            raise DatError(f"{what}: a name of {size} bytes (at most {limit} expected)")
        try:
            return bytes(self.take(size, what)).decode("ascii")
        except UnicodeDecodeError:
            raise DatError(f"{what}: not an ASCII name at byte {self.pos - size}") from None

    def tensor(self, what: str) -> np.ndarray:
        """A tensor: version 2, its four dimensions, then float32 little-endian in NCHW order."""
        if (version := self.int(what)) != 2:
            raise DatError(f"{what}: tensor version {version}, 2 expected")
        shape = tuple(self.int(what) for _ in range(4))
        if min(shape) < 0:
            raise DatError(f"{what}: negative tensor size {shape}")
        count = int(np.prod(shape, dtype=object))
        if count * 4 > len(self.data) - self.pos:
            raise DatError(f"{what}: declares {count} floats, the file has fewer bytes left")
        raw = self.take(count * 4, what)
        return np.frombuffer(raw, "<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, ...]:
        """An alias tensor (a view into a layer's params): version 1 and its four dimensions."""
        if (version := self.int(what)) != 1:
            raise DatError(f"{what}: alias tensor version {version}, 1 expected")
        shape = tuple(self.int(what) for _ in range(4))
        if min(shape) < 0:
            raise DatError(f"{what}: negative alias size {shape}")
        return shape


def _split(params: np.ndarray, shapes: list[tuple[int, ...]], what: str) -> list[np.ndarray]:
    """The alias tensors of `params`, laid out one after the other as dlib does."""
    flat, out, start = params.reshape(-1), [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        if start + size > flat.size:
            raise DatError(f"{what}: its parameters hold {flat.size} floats, {start + size} needed")
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


def _geometry(s: _Stream, what: str) -> dict[str, int]:
    keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    return {key: s.int(f"{what} {key}") for key in keys}


def _con(s: _Stream, version: str, what: str) -> Layer:
    params = s.tensor(f"{what} params")
    filters = s.int(f"{what} num_filters")
    settings = {"num_filters": filters, **_geometry(s, what)}
    shapes = [s.alias(f"{what} filters"), s.alias(f"{what} biases")]
    for name in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        s.float(f"{what} {name}")
    use_bias = s.bool(f"{what} use_bias") if version in ("con_5", "con_6") else True
    if version == "con_6" and s.bool(f"{what} use_relu"):
        raise DatError(f"{what}: a convolution with a fused ReLU is not supported")
    kernel, bias = _split(params, shapes if use_bias else shapes[:1], what) + [None][: not use_bias]
    if kernel.shape[0] != filters or kernel.shape[2:] != (settings["nr"], settings["nc"]):
        raise DatError(f"{what}: filters of shape {kernel.shape} for {filters} filters")
    tensors = {"filters": kernel}
    if bias is not None:
        tensors["biases"] = bias.reshape(-1)
    return Layer("con", settings, tensors)


def _affine(s: _Stream, version: str, what: str) -> Layer:
    params = s.tensor(f"{what} params")
    shapes = [s.alias(f"{what} gamma"), s.alias(f"{what} beta")]
    mode = s.int(f"{what} mode")
    if version == "affine_2" and s.bool(f"{what} disabled"):
        raise DatError(f"{what}: a disabled affine layer is not supported")
    gamma, beta = _split(params, shapes, what)
    return Layer("affine", {"mode": mode}, {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)})


def _fc(s: _Stream, version: str, what: str) -> Layer:
    outputs, inputs = s.int(f"{what} num_outputs"), s.int(f"{what} num_inputs")
    params = s.tensor(f"{what} params")
    shapes = [s.alias(f"{what} weights"), s.alias(f"{what} biases")]
    bias_mode = s.int(f"{what} bias mode")
    for name in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        s.float(f"{what} {name}")
    if version == "fc_3":
        s.bool(f"{what} use_bias")
    has_bias = bias_mode == 0  # dlib's FC_HAS_BIAS
    parts = _split(params, shapes if has_bias else shapes[:1], what)
    if parts[0].size != inputs * outputs:
        raise DatError(f"{what}: {parts[0].size} weights for {inputs} inputs, {outputs} outputs")
    tensors = {"weights": parts[0].reshape(inputs, outputs)}
    if has_bias:
        tensors["biases"] = parts[1].reshape(-1)
    return Layer("fc", {"num_outputs": outputs, "num_inputs": inputs}, tensors)


def _relu(s: _Stream, version: str, what: str) -> Layer:
    if version == "relu_2" and s.bool(f"{what} disabled"):
        raise DatError(f"{what}: a disabled ReLU is not supported")
    return Layer("relu")


def _pool(kind: str):
    def read(s: _Stream, version: str, what: str) -> Layer:
        return Layer(kind, _geometry(s, what))

    return read


# the version strings this reader knows, and how to read the rest of each layer's details
READERS = {
    **{v: _con for v in ("con_4", "con_5", "con_6")},
    **{v: _affine for v in ("affine_", "affine_2")},
    **{v: _fc for v in ("fc_2", "fc_3")},
    **{v: _relu for v in ("relu_", "relu_2")},
    "add_prev_": lambda s, version, what: Layer("add_prev"),
    "max_pool_2": _pool("max_pool"),
    "avg_pool_2": _pool("avg_pool"),
}
LOSSES = {"loss_metric_": 0, "loss_metric_2": 2}  # name -> how many floats follow


def _layer(s: _Stream, index: int) -> Layer:
    """One add_layer's record after its sub-network: its details, three flags and three cached
    tensors of training; the layer on the input (layer 0, an add_layer of version 3) ends with
    its sample expansion factor."""
    what = f"layer {index}"
    version = s.string(f"{what} name")
    if version not in READERS:
        raise DatError(f"{what}: layer type '{version}' is not supported")
    layer = READERS[version](s, version, what)
    for flag in ("setup", "stale", "disabled"):
        s.bool(f"{what} {flag} flag")
    for cached in ("input gradient", "cached output", "gradient"):
        s.tensor(f"{what} {cached}")
    if index == 0:
        s.int(f"{what} sample expansion factor")
    return layer


def parse(data: bytes) -> Network:
    """The network in `data` (a whole .dat file); DatError when it is not one this reader takes."""
    s = _Stream(data)
    if s.int("the loss version") != 1:
        raise DatError("not a dlib network with a loss layer (wrong first byte)")
    loss = s.string("the loss name")
    if loss not in LOSSES:
        raise DatError(f"loss layer '{loss}' is not supported")
    for _ in range(LOSSES[loss]):
        s.float("the loss settings")
    wrappers = []
    while (version := s.int("a layer version")) in (1, 2):
        wrappers.append(version)  # 2: add_layer; 1: a tag or a skip (nothing more stored)
        if len(wrappers) > MAX_WRAPPERS:
            raise DatError(f"more than {MAX_WRAPPERS} nested layers")
    if version != 3:
        raise DatError(f"layer version {version} found where 1, 2 or 3 was expected")
    name = s.string("the input layer")
    if name != "input_rgb_image_sized":
        raise DatError(f"input layer '{name}' is not supported")
    mean_rgb = tuple(s.float("the input mean") for _ in range(3))
    input_size = (s.int("the input rows"), s.int("the input columns"))
    layers = [_layer(s, i) for i in range(wrappers.count(2) + 1)]
    if s.pos != len(s.data):
        raise DatError(f"{len(s.data) - s.pos} bytes left after the last layer")
    return Network(loss, input_size, mean_rgb, layers)  # type: ignore[arg-type]


def read_network(path: str | Path) -> Network:
    """The network stored in a dlib .dat file, or a one-line UserError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        return parse(data)
    except DatError as error:
        raise UserError(
            f"{path}: not a dlib network this reader accepts ({error}); reinstall the package "
            "that ships it"
        ) from None
