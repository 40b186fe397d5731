"""Read a legacy (non-zip) PyTorch state dict into NumPy arrays, without torch and without
executing anything from the file: only OrderedDict, tensors and their storages are allowed."""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cls.errors import UserError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements, as torch stores them

    def array(self) -> np.ndarray:
        """The tensor read through its strides (a torch tensor need not be contiguous), once the
        whole range of elements the view touches lies inside its storage. torch writes no
        negative offset, size or stride: one is refused, as it would reach before the storage."""
        data = self.storage.data
        numbers = (self.offset, *self.shape, *self.strides)
        if len(self.shape) != len(self.strides) or min(numbers) < 0:
            raise ValueError(f"tensor view of offset {self.offset}, shape {self.shape} and "
                             f"strides {self.strides} in storage {self.storage.key}")  # fmt: skip
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.strides, strict=True))
        if min(self.shape, default=1) > 0 and last >= len(data):
            raise ValueError(f"tensor reaches past its storage {self.storage.key} (element {last} "
                             f"of {len(data)})")  # fmt: skip
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.shape, tuple(s * item for s in self.strides), writeable=False
        )
        return np.array(view, order="C")  # a contiguous copy


def _rebuild_tensor_v2(storage, offset, shape, strides, requires_grad=False, hooks=None, *_):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    return _TensorRef(storage, int(offset), tuple(shape), tuple(strides))


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _PlainUnpickler(pickle.Unpickler):
    """Plain data only (numbers, strings, lists, dicts): every global is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")


class _StateDictUnpickler(_PlainUnpickler):
    """Also resolves what a state dict needs (OrderedDict, tensors, storages) and nothing else."""

    def __init__(self, file):
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            return super().persistent_load(pid)
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("a storage of an unknown type")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(str(key), storage_type.dtype, int(numel))
        return self.storages[key]


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy torch.save() state dict, by name, as NumPy arrays."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            return _read(file)
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror or error})") from None
    except (pickle.UnpicklingError, ValueError, EOFError, struct.error, TypeError) as error:
        raise UserError(
            f"{path}: not a PyTorch state dict this reader accepts ({error}); reinstall the "
            "package that ships it"
        ) from None


def _read(file) -> dict[str, np.ndarray]:
    if _PlainUnpickler(file).load() != LEGACY_MAGIC:
        raise ValueError("not a legacy torch.save file (wrong magic number)")
    if _PlainUnpickler(file).load() != LEGACY_PROTOCOL:
        raise ValueError("unsupported torch.save protocol")
    sys_info = _PlainUnpickler(file).load()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
        raise ValueError("only little-endian files are supported")
    unpickler = _StateDictUnpickler(file)
    state = unpickler.load()
    keys = _PlainUnpickler(file).load()
    for key in keys:
        storage = unpickler.storages.get(key)
        if storage is None:
            raise ValueError(f"storage {key} is not used by any tensor")
        (numel,) = struct.unpack("<q", file.read(8))
        if numel != storage.numel:
            raise ValueError(f"storage {key} holds {numel} elements, {storage.numel} expected")
        raw = file.read(numel * storage.dtype.itemsize)
        if len(raw) != numel * storage.dtype.itemsize:
            raise ValueError(f"the file ends inside storage {key} (truncated)")
        storage.data = np.frombuffer(raw, storage.dtype)
    if not isinstance(state, dict):
        raise ValueError("the file does not hold a dict of tensors")
    arrays = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef) or value.storage.data is None:
            raise ValueError(f"entry {name!r} is not a tensor with its data")
        arrays[str(name)] = value.array()
    return arrays
