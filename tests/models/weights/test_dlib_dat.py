"""The .dat reader: dlib's format read back, truncated, foreign and oversized files refused."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from gender_cls.errors import UserError
from gender_cls.models.weights import dlib_dat


def packed(value: int) -> bytes:
    """dlib's packed integer (serialize.h): control byte, then the magnitude's bytes."""
    magnitude = abs(value).to_bytes(8, "little").rstrip(b"\0")
    return bytes([len(magnitude) | (0x80 if value < 0 else 0)]) + magnitude


def string(text: str) -> bytes:
    return packed(len(text)) + text.encode()


def floating(value: float) -> bytes:
    mantissa, denominator = float(value).as_integer_ratio()  # value = mantissa / 2**k
    return packed(mantissa) + packed(-(denominator.bit_length() - 1))


def tensor(array: np.ndarray) -> bytes:
    shape = (array.shape + (1, 1, 1, 1))[:4]
    return packed(2) + b"".join(packed(n) for n in shape) + array.astype("<f4").tobytes()


def alias(*shape: int) -> bytes:
    return packed(1) + b"".join(packed(n) for n in (shape + (1, 1, 1, 1))[:4])


def con_record(filters: int, channels: int, size: int) -> bytes:
    """A con_4 layer's details, as dlib writes them."""
    kernel = np.arange(filters * channels * size * size, dtype=np.float32)
    params = np.concatenate([kernel, np.ones(filters, np.float32)])
    return (string("con_4") + tensor(params) + packed(filters) + packed(size) + packed(size)
            + packed(1) + packed(1) + packed(size // 2) + packed(size // 2)
            + alias(filters, channels, size, size) + alias(1, filters)
            + b"".join(floating(v) for v in (1.0, 1.0, 1.0, 0.0)))  # fmt: skip


def network(*records: bytes) -> bytes:
    """loss_metric_2 over add_layers (version 2) over the input layer's add_layer (version 3)."""
    empty = tensor(np.zeros((0,), np.float32))
    head = packed(1) + string("loss_metric_2") + floating(0.04) + floating(0.6)
    head += packed(2) * (len(records) - 1) + packed(3)
    head += string("input_rgb_image_sized") + b"".join(floating(v) for v in (122.5, 117.0, 104.25))
    head += packed(150) + packed(150)
    body = records[0] + b"111" + empty * 3 + packed(1)
    for record in records[1:]:
        body += record + b"010" + empty * 3
    return head + body


def test_a_file_written_in_dlibs_format_reads_back(tmp_path):
    path = tmp_path / "tiny.dat"
    path.write_bytes(network(con_record(2, 3, 3), string("relu_"), string("add_prev_")))
    net = dlib_dat.read_network(path)
    assert (net.loss, net.input_size, net.mean_rgb) == ("loss_metric_2", (150, 150),
                                                        (122.5, 117.0, 104.25))  # fmt: skip
    assert [layer.kind for layer in net.layers] == ["con", "relu", "add_prev"]
    con = net.layers[0]
    assert con.settings == {"num_filters": 2, "nr": 3, "nc": 3, "stride_y": 1, "stride_x": 1,
                            "padding_y": 1, "padding_x": 1}  # fmt: skip
    np.testing.assert_array_equal(con.tensors["filters"].ravel(), np.arange(54))
    np.testing.assert_array_equal(con.tensors["biases"], [1, 1])


@pytest.mark.parametrize("cut", [1, 40, 200, -3])
def test_a_truncated_file_is_one_line_naming_it(tmp_path, cut):
    data = network(con_record(2, 3, 3), string("relu_"))
    path = tmp_path / "cut.dat"
    path.write_bytes(data[:cut] if cut > 0 else data[:cut])
    with pytest.raises(UserError) as error:
        dlib_dat.read_network(path)
    message = str(error.value)
    assert message.startswith(f"{path}: not a dlib network") and "\n" not in message


def test_foreign_files_and_unknown_layers_are_refused_by_name(tmp_path):
    png = tmp_path / "photo.dat"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(UserError, match="not a dlib network"):
        dlib_dat.read_network(png)
    other = tmp_path / "bn.dat"
    other.write_bytes(network(con_record(2, 3, 3), string("bn_con2") + bytes(50)))
    with pytest.raises(UserError, match="layer type 'bn_con2' is not supported"):
        dlib_dat.read_network(other)
    with pytest.raises(UserError, match="cannot read"):
        dlib_dat.read_network(tmp_path / "missing.dat")


def test_a_declared_size_beyond_the_bytes_present_is_refused_before_reading(tmp_path):
    huge = packed(2) + b"".join(packed(n) for n in (1 << 20, 1 << 20, 1, 1))  # 4 TB of floats
    record = string("con_4") + huge + bytes(64)
    path = tmp_path / "huge.dat"
    path.write_bytes(network(record))
    with pytest.raises(UserError, match="declares 1099511627776 floats"):
        dlib_dat.read_network(path)
    bad_count = packed(2) + packed(-1) + packed(1) + packed(1) + packed(1)
    path.write_bytes(network(string("con_4") + bad_count))
    with pytest.raises(UserError, match="negative tensor size"):
        dlib_dat.read_network(path)


def test_packed_numbers_as_dlib_writes_them():
    stream = dlib_dat._Stream(packed(0) + packed(-300) + packed(2**40) + floating(0.75))
    assert (stream.int(), stream.int(), stream.int()) == (0, -300, 2**40)
    assert stream.float("x") == 0.75
    with pytest.raises(dlib_dat.DatError, match="control byte"):
        dlib_dat._Stream(b"\x79").int()


def test_the_wheels_face_embedding_reads_as_dlib_defines_it():
    from gender_cls.models.weights.dlib_resnet import wheel_file

    pytest.importorskip("face_recognition_models")
    net = dlib_dat.read_network(wheel_file())
    kinds = collections.Counter(layer.kind for layer in net.layers)
    assert kinds == {"con": 29, "affine": 29, "relu": 29, "add_prev": 14, "avg_pool": 5,
                     "max_pool": 1, "fc": 1}  # fmt: skip
    assert net.loss == "loss_metric_2" and net.input_size == (150, 150)
    assert net.layers[-1].tensors["weights"].shape == (256, 128)
