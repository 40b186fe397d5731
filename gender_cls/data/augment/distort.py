"""Probe distortions for face verification, and a distorted copy of a folder tree: blur, noise,
fog, rain, low light, overexposure, low resolution and JPEG artefacts."""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from gender_cls.atomic import unique_stems
from gender_cls.config import DISTORTION_KINDS
from gender_cls.data.images import ImageReadError, read_image
from gender_cls.data.index import list_images
from gender_cls.errors import UserError

KINDS = DISTORTION_KINDS


def _blur(rgb, rng):
    sigma = rng.uniform(1.5, 3.0) * max(rgb.shape[:2]) / 128  # about the same look at any size
    return cv2.GaussianBlur(rgb, (0, 0), sigma)


def _noise(rgb, rng):
    return rgb + rng.normal(0, rng.uniform(12, 25), rgb.shape)


def _fog(rgb, rng):
    """A pale veil, thicker towards the top, and less contrast."""
    height = rgb.shape[0]
    thickness = rng.uniform(0.35, 0.6) * np.linspace(1.0, 0.6, height)[:, None, None]
    return rgb * (1 - thickness) + rng.uniform(200, 235) * thickness


def _rain(rgb, rng):
    """Thin, slanted, pale streaks, slightly blurred."""
    height, width = rgb.shape[:2]
    streaks = np.zeros((height, width), np.float32)
    slant, length = rng.uniform(-0.3, 0.3), max(6, height // 8)
    for _ in range(height * width // 50):
        x, y = int(rng.uniform(0, width)), int(rng.uniform(0, height))
        end = (int(x + slant * length), y + length)
        cv2.line(streaks, (x, y), end, float(rng.uniform(0.4, 0.8)), 1, cv2.LINE_AA)
    streaks = cv2.GaussianBlur(streaks, (0, 0), 0.6)[..., None]
    return rgb * (1 - streaks) + 220 * streaks


def _lowlight(rgb, rng):
    dark = 255 * (rgb / 255) ** rng.uniform(1.8, 2.6) * rng.uniform(0.3, 0.5)
    return dark + rng.normal(0, 4, rgb.shape)  # sensor noise shows in the dark


def _overexpose(rgb, rng):
    return rgb * rng.uniform(1.6, 2.2) + rng.uniform(30, 70)


def _lowres(rgb, rng):
    height, width = rgb.shape[:2]
    side = int(rng.uniform(16, 28))
    small = cv2.resize(rgb, (side, max(1, side * height // width)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _jpeg(rgb, rng):
    quality = int(rng.uniform(5, 15))
    _, data = cv2.imencode(".jpg", np.uint8(rgb), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


DISTORTIONS = {"blur": _blur, "noise": _noise, "fog": _fog, "rain": _rain,
               "lowlight": _lowlight, "overexpose": _overexpose, "lowres": _lowres,
               "jpeg": _jpeg}  # fmt: skip


def distort(rgb: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One distortion of an RGB uint8 image, its strength drawn from `rng`; uint8 out."""
    if kind not in DISTORTIONS:
        raise UserError(f"unknown distortion {kind!r}; choose from {', '.join(KINDS)}")
    out = DISTORTIONS[kind](np.asarray(rgb, np.float32), rng)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def parse_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise UserError(f"--kinds: unknown {', '.join(unknown) or '(none given)'}; choose from "
                        f"{', '.join(KINDS)}")  # fmt: skip
    return kinds


@dataclass
class DistortReport:
    written: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def distort_tree(
    src: str | Path, dst: str | Path, kinds: list[str], seed: int = 0
) -> DistortReport:
    """Mirror `src` under `dst`, each image as one `<stem>_<kind>.jpg` per kind. The strength of
    each copy depends only on the seed, the image's path under `src` and the kind, so a run
    repeats exactly whatever the order or the number of threads."""
    from tqdm import tqdm  # kept out of start-up

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise UserError(f"{src}: not a folder; pass the root of an image tree")
    paths = list_images(src)
    if not paths:
        raise UserError(f"{src}: no images found under this folder")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise UserError(f"{dst}: must lie outside {src}, or the copies would be read as input")

    stems = dict(zip(paths, unique_stems([p.relative_to(src) for p in paths]), strict=True))

    def one(path: Path) -> str | None:
        """Write the copies of one image; the reason it cannot be read or written, else None."""
        try:
            rgb = read_image(path)
        except ImageReadError as error:
            return error.reason
        relative = path.relative_to(src)
        (dst / relative.parent).mkdir(parents=True, exist_ok=True)
        key = zlib.crc32(relative.as_posix().encode())
        for kind in kinds:
            image = distort(rgb, kind, np.random.default_rng([seed, key, KINDS.index(kind)]))
            target = dst / relative.parent / f"{stems[path]}_{kind}.jpg"
            if not cv2.imwrite(str(target), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 95]):  # fmt: skip
                return f"could not write {target}"
        return None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        reasons = list(tqdm(pool.map(one, paths), total=len(paths), desc="distort", unit="img",
                            disable=None))  # fmt: skip
    unreadable = [(str(p), r) for p, r in zip(paths, reasons, strict=True) if r is not None]
    return DistortReport((len(paths) - len(unreadable)) * len(kinds), unreadable)
