"""Reading any image: formats, modes, EXIF, corrupt and oversized files."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from gender_cls.data.images import ImageReadError, load_image, read_image, resize_image
from tests.helpers import bomb_png, raising_dds


def gradient(h: int = 20, w: int = 30) -> np.ndarray:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    rgb[..., 1] = 100
    return rgb


@pytest.mark.parametrize("ext", [".jpg", ".JPEG", ".png", ".bmp", ".gif", ".webp"])
def test_every_extension_reads_as_rgb_uint8(tmp_path, ext):
    path = tmp_path / f"img{ext}"
    Image.fromarray(gradient()).save(path, format={".jpg": "JPEG", ".JPEG": "JPEG"}.get(ext))
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (20, 30, 3)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(gradient()[..., 0]).save(path)
    rgb = read_image(path)
    assert rgb.shape == (20, 30, 3)
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_sixteen_bit_png_is_scaled_by_its_bit_depth(tmp_path):
    twelve_bit = np.linspace(0, 4095, 20 * 30).reshape(20, 30).astype(np.uint16)
    path = tmp_path / "xray16.png"
    Image.fromarray(twelve_bit).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = read_image(path)
    assert rgb.dtype == np.uint8
    assert rgb.max() == 255 and rgb.min() == 0  # 12-bit data fills the 8-bit range


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:5, :, 3] = 255  # top half opaque red, bottom half fully transparent
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    rgb = read_image(path)
    assert tuple(rgb[0, 0]) == (200, 0, 0)
    assert tuple(rgb[9, 9]) == (255, 255, 255)


def test_palette_png_with_transparency(tmp_path):
    image = Image.fromarray(gradient()).convert("P")
    image.info["transparency"] = 0
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)
    assert read_image(path).shape == (20, 30, 3)


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(gradient()).convert("CMYK").save(path)
    rgb = read_image(path)
    assert rgb.shape == (20, 30, 3)
    assert abs(int(rgb[10, 29, 0]) - 255) < 30  # red ramp survives the round trip


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 30, 3), np.uint8)
    stored[0, :, 0] = 255  # red top row as stored
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=100)
    rgb = read_image(path)
    assert rgb.shape == (30, 20, 3)
    assert rgb[:, -1, 0].mean() > 150 and rgb[:, 0, 0].mean() < 50  # top row became right column


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\xff\xd8\xff\xe0garbage"])
def test_corrupt_files_raise_a_named_error(tmp_path, content):
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        read_image(path)


def test_truncated_jpeg_raises(tmp_path):
    path = tmp_path / "truncated.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ImageReadError):
        read_image(path)


def test_resize_stretch_and_pad():
    rgb = np.full((20, 40, 3), 255, np.uint8)
    assert resize_image(rgb, 16, "stretch").shape == (16, 16, 3)
    padded = resize_image(rgb, 16, "pad")
    assert padded.shape == (16, 16, 3)
    assert padded[0, 8].sum() == 0 and padded[8, 8].min() == 255  # bands above and below


def test_load_image_downscales_large_jpeg(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.full((800, 600, 3), 128, np.uint8)).save(path)
    assert load_image(path, 64).shape == (64, 64, 3)


def test_an_image_over_the_pixel_cap_is_refused_before_decoding(tmp_path, monkeypatch):
    from gender_cls.data.images import MAX_PIXELS_VARIABLE

    path = tmp_path / "big.png"
    Image.new("RGBA", (3000, 2000), (10, 20, 30, 128)).save(path)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "5000000")
    with pytest.raises(
        ImageReadError, match=rf"big.png: .*3000 x 2000 pixels.*{MAX_PIXELS_VARIABLE}"
    ):
        read_image(path)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "6000000")
    assert read_image(path).shape == (2000, 3000, 3)


def test_a_large_rgba_png_decodes_to_the_size_needed_and_composites_in_uint8(tmp_path):
    import tracemalloc

    path = tmp_path / "large.png"
    Image.new("RGBA", (4000, 4000), (0, 0, 0, 0)).save(path)  # transparent: white once composited
    tracemalloc.start()
    rgb = load_image(path, 100)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rgb.shape == (100, 100, 3) and (rgb == 255).all()
    assert peak < 4000 * 4000 * 4  # below one float32 channel of the full image (was 4 of them)


OTHER_FORMATS = ["TIFF", "ICO", "PCX", "PPM", "SGI", "TGA", "IM", "DDS", "PSD"]


@pytest.mark.parametrize("fmt", OTHER_FORMATS)
def test_a_file_of_another_format_is_refused_by_its_bytes_whatever_its_name(tmp_path, fmt):
    """Named .jpg, the bytes of a format outside FORMATS reach no decoder (PSD: Pillow cannot
    write it; a header is enough)."""
    path = tmp_path / "photo.jpg"
    if fmt == "PSD":
        path.write_bytes(b"8BPS\x00\x01" + bytes(6) + b"\x00\x03" + bytes(12) + bytes(64))
    else:
        Image.fromarray(gradient(16, 16)).save(path, format=fmt)
    with pytest.raises(ImageReadError, match="not a JPEG, PNG, BMP, GIF or WebP file"):
        read_image(path)


def test_a_fifo_is_refused_at_once_instead_of_waited_on(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match="a FIFO, socket or device, not a regular file"):
        read_image(fifo)


def mutations(data: bytes, rng: np.random.Generator, count: int):
    """`count` damaged copies of `data`: bytes overwritten, cut, repeated, or headers' numbers
    pushed to their extremes."""
    for _ in range(count):
        buffer = bytearray(data)
        kind = rng.integers(4)
        if kind == 0:  # random bytes overwritten, mostly in the headers
            for _ in range(rng.integers(1, 8)):
                at = int(min(rng.exponential(64), len(buffer) - 1))
                buffer[at] = int(rng.integers(256))
        elif kind == 1:  # cut short
            buffer = buffer[: int(rng.integers(1, len(buffer)))]
        elif kind == 2:  # a run copied elsewhere
            a, b = sorted(rng.integers(0, len(buffer), 2))
            at = int(rng.integers(len(buffer)))
            buffer[at:at] = buffer[a:b]
        else:  # a 16-bit field set to 0 or 0xFFFF (sizes, counts, lengths)
            at = int(min(rng.exponential(48), len(buffer) - 2))
            buffer[at : at + 2] = bytes([255, 255]) if rng.integers(2) else bytes(2)
        yield bytes(buffer)


def test_fuzzed_files_of_every_accepted_format_read_or_raise_image_read_error(monkeypatch):
    """3,000 damaged files (600 per format, fixed seed): each decodes to RGB uint8 or raises
    ImageReadError; nothing else escapes, whatever the decoder raises. The cap is low so that a
    header claiming a huge image is refused rather than allocated."""
    monkeypatch.setenv("GENDER_CLS_MAX_PIXELS", "250000")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    outcomes = {"read": 0, "refused": 0}
    for fmt in ("JPEG", "PNG", "BMP", "GIF", "WEBP"):
        encoded = io.BytesIO()
        image.save(encoded, format=fmt)
        for damaged in mutations(encoded.getvalue(), rng, 600):
            try:
                rgb = read_image(io.BytesIO(damaged))
            except ImageReadError:
                outcomes["refused"] += 1
                continue
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
            outcomes["read"] += 1
    assert sum(outcomes.values()) == 3000
    assert outcomes["refused"] > 300 and outcomes["read"] > 300  # both kinds were exercised


def test_a_decoder_that_raises_not_implemented_error_is_that_files_error(tmp_path):
    """A DDS file with its pixel-format flags zeroed made Pillow raise NotImplementedError, which
    ended predict.py with a traceback; named .jpg it is now refused by its bytes, and any
    exception from a decoder that does run is an ImageReadError."""
    data = raising_dds()
    with pytest.raises(NotImplementedError):
        Image.open(io.BytesIO(data)).load()
    (tmp_path / "face.jpg").write_bytes(data)
    with pytest.raises(ImageReadError, match="face.jpg: cannot read image .not a JPEG"):
        read_image(tmp_path / "face.jpg")


def test_pillows_own_bomb_limit_does_not_answer_before_max_pixels(tmp_path, monkeypatch):
    """196 million pixels is past Pillow's bomb limit (179 M) but under a --max_pixels of 300 M:
    the header passes; over 150 M the refusal names the option, not a "DOS attack"."""
    path = bomb_png(tmp_path / "big.png", 14000)
    monkeypatch.setenv("GENDER_CLS_MAX_PIXELS", "150000000")
    with pytest.raises(ImageReadError, match=r"14000 x 14000 pixels.*pass --max_pixels N"):
        read_image(path)
    monkeypatch.setenv("GENDER_CLS_MAX_PIXELS", "300000000")
    with Image.open(path) as image:  # what read_image opens first: no DecompressionBombError
        assert image.size == (14000, 14000)
