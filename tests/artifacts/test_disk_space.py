"""A full disk: checked before Keras writes a model file (h5py segfaults on ENOSPC), one line and
exit 2, the last complete backup kept. On a small tmpfs where this machine lets us mount one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gender_cls.artifacts.disk_space import ensure_room
from gender_cls.atomic import write_text
from gender_cls.errors import DiskFull
from tests.helpers import REPO

TINY = ["--backbone", "MobileNet", "--alpha", "0.25", "--weights", "none", "--image_size", "64"]


@pytest.fixture
def small_disk(tmp_path):
    """A 9 MB tmpfs: a tiny run's first checkpoint and backup fit, the second checkpoint does not."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_room_is_checked_before_writing_and_a_failed_write_is_disk_full(small_disk):
    with pytest.raises(DiskFull, match=r"disk: the disk is full \(9.0 MB free, a model file"):
        ensure_room(small_disk / "model.keras", 10 << 20)
    ensure_room(small_disk / "model.keras", 8 << 20)
    with pytest.raises(DiskFull, match=r"disk: the disk is full \(No space left on device\)"):
        write_text(small_disk / "big.txt", "x" * (10 << 20))
    assert os.listdir(small_disk) == []  # the temp file went with the failure


@pytest.mark.slow
def test_training_onto_a_full_disk_stops_in_one_line_and_keeps_its_last_backup(
    small_disk, two_class_data
):
    """It ended in a segfault (exit 139) after h5py's errors, with no backup left. (That
    --resume continues from such a backup is tested with a killed run.)"""
    import h5py

    run = small_disk / "run"
    args = [sys.executable, str(REPO / "train_model.py"), "--data_path", str(two_class_data),
            "--output_dir", str(run), "--epochs", "3", "--patience", "100", "--batch_size", "8",
            "--export", "none", *TINY]  # fmt: skip
    full = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert full.returncode == 2, full.stderr[-2000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {run}/checkpoints") and "the disk is full" in last
    (backup,) = Path(run, "checkpoints").glob("backup_*/epoch-*.weights.h5")
    with h5py.File(backup) as weights:  # whole: it opens and holds the model's layers
        assert len(weights.keys()) > 0
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
