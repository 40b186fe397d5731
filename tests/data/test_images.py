"""Reading any image: formats, modes, EXIF, corrupt and oversized files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gender_cls.data.images import ImageReadError, load_image, read_image, resize_image


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
