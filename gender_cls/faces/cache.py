"""The crop cache: aligned crops on disk keyed by file, detector, template and size, so each image
is detected once; cropping a split or a whole tree through it."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2

from gender_cls.atomic import replacing, unique_stems, write_text
from gender_cls.config import FaceCrop
from gender_cls.data.images import ImageReadError, read_image, resize_image
from gender_cls.data.index import Split, list_images
from gender_cls.errors import UserError
from gender_cls.faces.cropper import FaceCropper

log = logging.getLogger(__name__)
CROP_VERSION = 4  # part of every crop cache key: change it when the cropping code changes


@dataclass
class CropResult:
    """Where one image's aligned crop is (None: no face found, or unreadable with `error`)."""

    source: str
    crop: str | None
    error: str | None = None


def default_cache_dir() -> Path:
    """Where evaluation keeps aligned crops unless told otherwise (crop-faces writes straight to
    its destination: a cached copy made its first run a third slower)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "gender_cls" / "faces"


class CropCache:
    """Aligned crops on disk, keyed by file path, size and modification time, detector, margin,
    template and crop size, so each image is detected once across epochs, runs and evaluations."""

    def __init__(self, folder: str | Path, crop: FaceCrop, size: int):
        self.folder = Path(folder)
        self.crop, self.size = crop, size
        self._cropper: FaceCropper | None = None

    def _key(self, path: str) -> str:
        stat = os.stat(path)
        raw = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.crop.detector}|"
        raw += f"{self.crop.margin}|{self.crop.template}|{self.size}|v{CROP_VERSION}"
        return hashlib.sha1(raw.encode()).hexdigest()

    def get(self, path: str) -> CropResult:
        """The cached crop of `path`, detecting and aligning it on a miss."""
        try:
            key = self._key(path)
        except OSError as error:
            return CropResult(path, None, str(error))
        crop_file, none_file = self.folder / f"{key}.png", self.folder / f"{key}.noface"
        if crop_file.is_file():
            if self._intact(crop_file):
                return CropResult(path, str(crop_file))
            log.warning("%s: damaged face crop of %s in the cache; cropping again", crop_file, path)
            crop_file.unlink(missing_ok=True)
        if none_file.is_file():
            return CropResult(path, None)
        if self._cropper is None:
            self._cropper = FaceCropper(self.crop)
        try:
            rgb = read_image(path)
        except ImageReadError as error:
            return CropResult(path, None, error.reason)
        aligned, _ = self._cropper.crop_image(rgb, self.size)
        self.folder.mkdir(parents=True, exist_ok=True)
        if aligned is None:
            none_file.touch()
            return CropResult(path, None)
        try:
            with replacing(crop_file) as temp:
                if not cv2.imwrite(str(temp), cv2.cvtColor(aligned, cv2.COLOR_RGB2BGR)):
                    raise OSError("cv2.imwrite failed")
        except OSError as error:
            return CropResult(path, None, f"could not write its crop to {self.folder} ({error})")
        return CropResult(path, str(crop_file))

    def _intact(self, crop_file: Path) -> bool:
        """A cached crop decodes (through read_image, so under its pixel cap) to size x size."""
        try:
            return read_image(crop_file).shape[:2] == (self.size, self.size)
        except ImageReadError:
            return False

    def get_many(
        self, paths: Iterable[str], progress: Callable[[int], None] | None = None
    ) -> list[CropResult]:
        """Crops of many images on every core, in order; `progress(n)` after each image."""
        paths = list(paths)
        if self._cropper is None and paths:
            self._cropper = FaceCropper(self.crop)
        results: list[CropResult] = []
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for result in pool.map(self.get, paths):
                results.append(result)
                if progress:
                    progress(1)
        return results


@dataclass
class CropReport:
    """What a face crop of a list of images found: faces, images without one, unreadable ones."""

    found: int
    no_face: list[str]
    fallback: str
    unreadable: list[tuple[str, str]]
    sources: list[str]  # the original image of each path in the cropped split

    def to_dict(self) -> dict:
        return {"found": self.found, "no_face": len(self.no_face), "fallback": self.fallback}

    def summary(self) -> str:
        total = self.found + len(self.no_face)
        line = f"face found in {self.found} of {total} images"
        if self.no_face:
            use = "whole image used" if self.fallback == "full" else "left out"
            line += f"; {len(self.no_face)} without a face ({use})"
        return line


def crop_split(split: Split, cache: CropCache, fallback: str) -> tuple[Split, CropReport]:
    """The split with each path replaced by its aligned crop; images without a face keep their
    path (fallback "full") or are left out ("skip"); unreadable ones are left out and reported."""
    from tqdm import tqdm  # kept out of start-up

    with tqdm(total=len(split), desc="face crop", unit="img", disable=None, leave=False) as bar:
        results = cache.get_many(split.paths, bar.update)
    cropped = Split()
    no_face, unreadable, sources = [], [], []
    for result, label in zip(results, split.labels, strict=True):
        if result.error is not None:
            unreadable.append((result.source, result.error))
            continue
        if result.crop is None:
            no_face.append(result.source)
            if fallback == "skip":
                continue
        cropped.paths.append(result.crop or result.source)
        cropped.labels.append(label)
        sources.append(result.source)
    found = len(results) - len(no_face) - len(unreadable)
    return cropped, CropReport(found, no_face, fallback, unreadable, sources)


def crop_tree(src: str | Path, dst: str | Path, crop: FaceCrop, size: int,
              fallback: str) -> CropReport:  # fmt: skip
    """Write the aligned face of every image under `src` to the same place under `dst` (as PNG,
    size x size); no face: the whole image resized ("full") or nothing ("skip")."""
    from tqdm import tqdm  # kept out of start-up

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise UserError(f"{src}: not a folder; pass the root of an image tree")
    paths = [str(p) for p in list_images(src)]
    if not paths:
        raise UserError(f"{src}: no images found under this folder")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise UserError(f"{dst}: must lie outside {src}, or the crops would be read as input")
    relative = [Path(p).relative_to(src) for p in paths]
    targets = {p: dst / r.parent / f"{stem}.png"
               for p, r, stem in zip(paths, relative, unique_stems(relative), strict=True)}  # fmt: skip
    cropper = FaceCropper(crop)

    def one(path: str) -> tuple[str, bool | None, str | None]:
        try:
            rgb = read_image(path)
        except ImageReadError as error:
            return path, None, error.reason
        aligned, _ = cropper.crop_image(rgb, size)
        if aligned is None and fallback == "skip":
            return path, False, None
        target = targets[path]
        target.parent.mkdir(parents=True, exist_ok=True)
        image = aligned if aligned is not None else resize_image(rgb, size)
        if not cv2.imwrite(str(target), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            return path, None, f"could not write {target}"
        return path, aligned is not None, None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(tqdm(pool.map(one, paths), total=len(paths), desc="crop-faces",
                            unit="img", disable=None))  # fmt: skip
    no_face = [p for p, found, _ in results if found is False]
    unreadable = [(p, error) for p, _, error in results if error is not None]
    written = [p for p, found, _ in results if found or (found is False and fallback == "full")]
    if no_face:
        write_text(dst / "no_face_found.txt", "\n".join(no_face) + "\n")
    return CropReport(len(results) - len(no_face) - len(unreadable), no_face, fallback,
                      unreadable, written)  # fmt: skip
