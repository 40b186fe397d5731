"""Read any image file into RGB uint8, resize it to the model's size, warp it (OpenCV, no
TensorFlow)."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
# The formats decoded, whatever a file's name says: Pillow tries only these on a file's bytes (its
# JPEG opener also reads MPO, the JPEG of phones that store a second picture). The rest of Pillow's
# forty decoders, some of which raise NotImplementedError or TypeError on crafted bytes, never run.
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
FORMATS_HELP = "JPEG, PNG, BMP, GIF or WebP"
BACKGROUND = 255  # transparent pixels are composited onto white
MAX_PIXELS_VARIABLE = "GENDER_CLS_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 64_000_000  # a 48-megapixel photo passes; --max_pixels raises it


class ImageReadError(ValueError):
    """A file that cannot be decoded as an image."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: cannot read image ({reason})")
        self.path = str(path)
        self.reason = reason


def is_image_file(path: Path) -> bool:
    """True for a visible file with one of the accepted extensions (case-insensitive)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _sixteen_bit_to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale 16-bit (or 12-bit stored in 16) intensities to 0..255 by the bit depth in use."""
    peak = int(array.max()) if array.size else 0
    bits = max(8, math.ceil(math.log2(peak + 1))) if peak > 0 else 8
    scaled = array.astype(np.float32) * (255.0 / (2**bits - 1))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to an RGB uint8 array."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        gray = _sixteen_bit_to_uint8(np.asarray(image))
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):  # composited in uint8 by Pillow
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (BACKGROUND,) * 3 + (255,))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


# read_image checks max_pixels() itself, before decoding, with a message naming --max_pixels; Pillow's
# own bomb check would answer first (at 179 MP) with one that names no option.
Image.MAX_IMAGE_PIXELS = None


def max_pixels() -> int:
    """The largest image (width x height, as decoded) read_image accepts."""
    value = os.environ.get(MAX_PIXELS_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_PIXELS


def read_image(path: str | Path | BinaryIO, size_hint: int | None = None) -> np.ndarray:
    """Decode a file (a path or a binary file object) into an RGB uint8 array (H, W, 3), applying
    its EXIF orientation. Any failure, whatever the decoder raises, is an ImageReadError.

    `size_hint` decodes to about that size where the format allows (JPEG's draft; others are
    reduced right after decoding), never below it on either side. An image of more pixels than
    max_pixels() is refused from its header, before it is decoded.
    """
    if isinstance(path, str | Path):
        _check_regular_file(path)
    try:
        with Image.open(path, formats=FORMATS) as image:
            if size_hint and image.format in ("JPEG", "MPO"):
                image.draft(None, (size_hint, size_hint))
            width, height = image.size
            if width * height > max_pixels():
                raise ImageReadError(path, f"{width} x {height} pixels, more than the "
                                     f"{max_pixels():,} allowed; pass --max_pixels N "
                                     f"(or set {MAX_PIXELS_VARIABLE}) to allow more")  # fmt: skip
            image.load()
            factor = min(width, height) // size_hint if size_hint else 1
            if factor > 1 and image.mode in ("RGB", "RGBA", "L", "LA"):
                image = image.reduce(factor)  # box average, as INTER_AREA would
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb(image)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, f"not a {FORMATS_HELP} file, whatever its name says") from None
    except Exception as error:  # noqa: BLE001 - any decoder's failure is this file's, not the run's
        raise ImageReadError(path, _reason(error)) from None
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageReadError(path, f"unexpected shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def _check_regular_file(path: str | Path) -> None:
    """Refuse what is not a regular file before opening it: reading a FIFO would wait forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ImageReadError(path, error.strerror or type(error).__name__) from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
        raise ImageReadError(path, f"{kind}, not a regular file")


def _reason(error: Exception) -> str:
    """One line for a decoder's exception: its message, else its type."""
    text = " ".join(str(error).split())[:200]
    if isinstance(error, OSError | ValueError | SyntaxError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def resize_image(rgb: np.ndarray, size: int, mode: str = "stretch") -> np.ndarray:
    """Resize to size x size: plain resize ("stretch") or keep the aspect and pad ("pad")."""
    height, width = rgb.shape[:2]
    if mode == "stretch":
        return _resize(rgb, size, size)
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    out = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = _resize(rgb, new_h, new_w)
    return out


def _resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    if rgb.shape[:2] == (height, width):
        return rgb
    shrinking = height < rgb.shape[0] or width < rgb.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interpolation)


def load_image(path: str | Path, size: int, mode: str = "stretch") -> np.ndarray:
    """Read and resize in one call: the pipeline's per-file work."""
    return resize_image(read_image(path, size_hint=size), size, mode)


BORDER_MODES = {
    "nearest": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT,
    "wrap": cv2.BORDER_WRAP,
    "constant": cv2.BORDER_CONSTANT,
}


def warp_image(
    image: np.ndarray, matrix: np.ndarray, fill_mode: str = "nearest", size=None
) -> np.ndarray:
    """Apply a 2x3 output-to-input matrix with one bilinear warp; `size` (w, h) of the output."""
    height, width = image.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    border = BORDER_MODES[fill_mode]
    return cv2.warpAffine(image, matrix, size or (width, height), flags=flags, borderMode=border)
