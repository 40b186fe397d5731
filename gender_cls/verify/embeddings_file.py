"""Embeddings out: one unit vector per image of a folder, with its path relative to the folder,
written to .npz (NumPy) or .parquet (pyarrow, when installed) for people to index themselves.

Images are read and embedded a chunk at a time, so memory grows only with the vectors kept
(N x D float32: 2,000 images of dlib's 128 dimensions are 1 MB); parquet is written a row group
per chunk. An image that cannot be read is listed, not embedded; one with no face found is
embedded whole and listed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cls.atomic import replacing
from gender_cls.data.images import ImageReadError, read_image
from gender_cls.data.index import list_images
from gender_cls.errors import UserError
from gender_cls.predict.inputs import chunks
from gender_cls.verify.verifier import FaceEmbedder

FORMATS = (".npz", ".parquet")


@dataclass
class EmbeddedFolder:
    """What embed_folder wrote: how many vectors, and the images it could not read or found no
    face in."""

    output: Path
    embedded: int
    dimensions: int
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)


def folder_images(images: str | Path) -> list[str]:
    """Every image under `images` (recursively), sorted; a UserError when there is none."""
    if not Path(images).is_dir():
        raise UserError(f"{images}: folder not found; check --images")
    files = [str(p) for p in list_images(Path(images))]
    if not files:
        raise UserError(f"{images}: no images in this folder or below it")
    return files


def embed_folder(
    faces: FaceEmbedder,
    images: str | Path,
    output: str | Path,
    files: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> EmbeddedFolder:
    """Embed the images under `images` (`files`, else folder_images) into `output` (.npz or
    .parquet), in chunks; `progress(n)` after each chunk of n images."""
    images, output = Path(images), Path(output)
    if output.suffix.lower() not in FORMATS:
        raise UserError(f"{output}: name a .npz or .parquet file")
    files = folder_images(images) if files is None else files
    writer = _ParquetRows(output) if output.suffix.lower() == ".parquet" else _NpzRows(output)
    done = EmbeddedFolder(output, 0, 0)
    with writer:
        for chunk in chunks(files):
            readable = []
            for path in chunk:
                try:
                    read_image(path, size_hint=32)
                    readable.append(path)
                except ImageReadError as error:
                    done.unreadable.append((os.path.relpath(path, images), error.reason))
            if readable:
                vectors, missing = faces.embed_faces(readable)
                writer.add([os.path.relpath(p, images) for p in readable], vectors)
                done.embedded += len(readable)
                done.dimensions = int(vectors.shape[1])
                done.no_face += [os.path.relpath(p, images) for p in missing]
            if progress:
                progress(len(chunk))
        if not done.embedded:
            raise UserError(f"{images}: none of its {len(files)} images could be read")
    return done


class _NpzRows:
    """Vectors gathered, written at the end as one .npz (paths, embeddings) through a temp file."""

    def __init__(self, output: Path):
        self.output, self.paths, self.vectors = output, [], []

    def __enter__(self):
        return self

    def add(self, paths: list[str], vectors: np.ndarray) -> None:
        self.paths += paths
        self.vectors.append(np.asarray(vectors, np.float32))

    def __exit__(self, kind, *_) -> None:
        if kind is not None or not self.vectors:
            return
        with replacing(self.output) as temp, temp.open("wb") as handle:
            np.savez(handle, paths=np.asarray(self.paths), embeddings=np.concatenate(self.vectors))


class _ParquetRows:
    """A row group per chunk (path, embedding as a fixed-size list), through a temp file."""

    def __init__(self, output: Path):
        try:
            import pyarrow as pa  # optional: only for .parquet
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError(f"{output}: writing parquet needs pyarrow (pip install pyarrow); "
                            "or name a .npz file") from None  # fmt: skip
        self.pa, self.pq, self.output, self.writer = pa, pq, output, None
        self.replacing = replacing(output)

    def __enter__(self):
        self.temp = self.replacing.__enter__()
        return self

    def add(self, paths: list[str], vectors: np.ndarray) -> None:
        pa = self.pa
        values = pa.array(np.asarray(vectors, np.float32).reshape(-1))
        column = pa.FixedSizeListArray.from_arrays(values, vectors.shape[1])
        table = pa.table({"path": pa.array(paths), "embedding": column})
        if self.writer is None:
            self.writer = self.pq.ParquetWriter(self.temp, table.schema)
        self.writer.write_table(table)

    def __exit__(self, kind, value, trace) -> None:
        if self.writer is not None:
            self.writer.close()
        self.replacing.__exit__(kind, value, trace)
