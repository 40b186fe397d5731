"""Which files a prediction reads: paths and folders expanded to image files, and the chunks they
are decoded in (memory flat in the number of files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gender_cls.data.index import EXTENSIONS_HELP, list_images
from gender_cls.errors import UserError

CHUNK = 256  # files decoded at a time by an exported model, TTA or predict_paths


def chunks(items: list, size: int | None = None) -> Iterator[list]:
    """`items` in consecutive slices of `size` (default CHUNK)."""
    size = size or CHUNK
    for start in range(0, len(items), size):
        yield items[start : start + size]


def expand_paths(paths: list[str | Path]) -> list[str]:
    """Files as given (any extension, so bad ones are reported) and images inside folders."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise UserError(f"{path}: no images in this folder ({EXTENSIONS_HELP})")
            files += [str(p) for p in found]
        elif path.exists():  # a FIFO or device too: its read reports it, rather than "not found"
            files.append(str(path))
        else:
            raise UserError(f"{path}: image not found; check --image_path")
    return files
