"""What a .keras file may hold before Keras reads it: the entries Keras and gender_cls write, each
no larger than its bytes in the file can decompress to.

Keras opens the zip and reads config.json and the weights whole; a few MB of deflated zeros can
declare gigabytes. zipfile never inflates an entry past its declared size, so checking every
declared size against the compressed bytes present (and a limit for the JSON entries) bounds what
loading allocates. Keras itself checks neither.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from gender_cls.errors import UserError

KERAS_ENTRIES = {"metadata.json", "config.json", "model.weights.h5", "gender_cls.json"}
ASSETS = "assets/"  # files of layers that keep some (a vocabulary), written by Keras
MAX_JSON_BYTES = 64 << 20
MAX_RATIO = 1100  # deflate never compresses better than 1032:1; Keras stores entries as they are


def check_keras_archive(path: Path) -> None:
    """Refuse, naming the entry, a .keras file with an entry Keras does not write, or one that
    declares more bytes than it could hold; anything that is not a zip is left to Keras."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile):
        return  # loading reports it as not a readable Keras model
    for entry in entries:
        name = entry.filename
        if name not in KERAS_ENTRIES and not name.startswith(ASSETS):
            raise UserError(f"{path}: holds {name!r}, which Keras does not write; not a model "
                            "saved by Keras")  # fmt: skip
        limit = entry.compress_size * MAX_RATIO + 4096
        if name.endswith(".json"):
            limit = min(limit, MAX_JSON_BYTES)
        if entry.file_size > limit:
            raise UserError(f"{path}: its entry {name!r} declares {entry.file_size:,} bytes, "
                            f"more than its {entry.compress_size:,} bytes in the file can hold "
                            "(or than such an entry may have); the file is damaged or hostile")  # fmt: skip
