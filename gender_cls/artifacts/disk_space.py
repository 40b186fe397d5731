"""Room on the disk before Keras writes a model file.

h5py does not survive a full disk: a write that fails with ENOSPC leaves HDF5's file object
broken, and the process segfaults when Python frees it (exit 139, whatever the caller caught),
so catching the error is too late. The room a model file takes is checked before Keras opens
it; other writes fail in plain Python, where `atomic.replacing` turns a full disk into the same
DiskFull error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from gender_cls.errors import DiskFull

MARGIN = 2 << 20  # the config, HDF5's own structures, a history: well under this


def variables_bytes(variables) -> int:
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def model_file_bytes(model, with_optimizer: bool = True) -> int:
    """About what a file of `model` takes: its weights (and its optimizer's variables when it
    has built one and `with_optimizer`), 5% more, plus MARGIN."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if with_optimizer and optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    return int(variables_bytes(variables) * 1.05) + MARGIN


def ensure_room(path: str | Path, needed: int) -> None:
    """DiskFull naming the folder of `path` when its disk has less than `needed` bytes free."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DiskFull(Path(path).parent, f"{free / 2**20:.1f} MB free, a model file needs "
                                          f"about {needed / 2**20:.1f} MB")  # fmt: skip


def ensure_room_for(model, path: str | Path, with_optimizer: bool = True) -> None:
    """ensure_room for a file of `model` (save: with its optimizer; save_weights: without)."""
    ensure_room(path, model_file_bytes(model, with_optimizer))
