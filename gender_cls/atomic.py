"""Write files atomically: to a uniquely named temp file beside the target, then rename, so a
reader never sees half a file and two writers never share a temp file; and under safe names."""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gender_cls.errors import DiskFull


def safe_name(text: str) -> str:
    """`text` (a class or file name from data or a downloaded card) fit for one path component:
    letters, digits, '.', '-' and '_' only, never hidden or empty."""
    return re.sub(r"[^\w.-]", "_", str(text)).lstrip(".") or "_"


def unique_stems(paths: Sequence[str | Path], flat: bool = False) -> list[str]:
    """A safe output stem per input file, distinct among the files written to one folder (the
    input's folder, or one folder for all when `flat`): the input's stem, then where two would
    share it (a.jpg and a.png) stem_ext, then stem_ext_N in input order."""
    paths = [Path(p) for p in paths]
    folder = [Path() if flat else p.parent for p in paths]
    stems = [safe_name(p.stem) for p in paths]
    for widen in (lambda i, s: f"{s}_{safe_name(paths[i].suffix.lstrip('.'))}",
                  lambda i, s: f"{s}_{i}"):  # fmt: skip
        counts = Counter(zip(folder, stems, strict=True))
        stems = [widen(i, s) if counts[(f, s)] > 1 else s
                 for i, (f, s) in enumerate(zip(folder, stems, strict=True))]  # fmt: skip
    return stems


def temp_path(path: Path) -> Path:
    """A unique hidden name beside `path` with the same suffix (writers choose the format by it:
    .keras, .h5, .weights.h5, .tflite, .onnx)."""
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    stem = path.name[: len(path.name) - len(suffix)]
    return path.with_name(f".{stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}")


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write; when the block succeeds it replaces `path` (a folder in the way
    is removed first), else it is deleted and `path` is left as it was. A full disk is DiskFull."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path)
    try:
        yield temp
        if temp.is_dir() and path.is_dir():
            shutil.rmtree(path)
        os.replace(temp, path)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(path.parent, error.strerror) from None
        raise
    finally:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        elif temp.exists():
            temp.unlink()


def write_text(path: str | Path, text: str) -> None:
    """Write a UTF-8 text file atomically; file names that are not valid UTF-8 keep their bytes."""
    with replacing(path) as temp:
        temp.write_text(text, encoding="utf-8", errors="surrogateescape")
