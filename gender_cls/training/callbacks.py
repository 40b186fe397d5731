"""Callbacks that write into a run folder, each file through a temp file and a rename, so a kill
at any instant leaves every file whole: the best checkpoint, the per-epoch backup that --resume
restores, and history.csv."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from pathlib import Path

import keras

from gender_cls.artifacts.disk_space import ensure_room_for
from gender_cls.atomic import replacing, temp_path, write_text
from gender_cls.errors import first_line

log = logging.getLogger(__name__)


class ClassifierCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that saves `classifier` when fit() trains a wrapper around it (one that
    augments on the accelerator), not the wrapper; each save goes to a temp file renamed over
    `filepath`, so a kill never leaves half a checkpoint."""

    def __init__(self, classifier: keras.Model, filepath: str, **kwargs):
        self.final = Path(filepath)
        super().__init__(str(temp_path(self.final)), **kwargs)
        self.classifier = classifier

    def set_model(self, model: keras.Model) -> None:
        super().set_model(self.classifier)

    def on_epoch_end(self, epoch, logs=None) -> None:
        ensure_room_for(self.model, self.filepath)
        super().on_epoch_end(epoch, logs)
        if Path(self.filepath).exists():
            os.replace(self.filepath, self.final)


class EpochBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose backup survives a kill at any instant. Keras' own writes its
    weights and its epoch counter in place, as two files: a kill mid-save leaves a truncated file
    (restored from its copy only when h5py happens to raise OSError) or weights of one epoch with
    the counter of the one before. Here each epoch's weights go to a temp file renamed to
    `epoch-NNNN.weights.h5`, the name being the counter; the newest that loads is restored, and
    the one before it is kept in case the newest cannot be read."""

    PATTERN = re.compile(r"epoch-(\d+)\.weights\.h5")

    def __init__(self, backup_dir: str | Path):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=True)

    def backups(self) -> list[tuple[int, Path]]:
        """(epoch, file) of every complete backup, oldest first."""
        folder = Path(self.backup_dir)
        found = [(int(m.group(1)), path) for path in folder.glob("epoch-*.weights.h5")
                 if (m := self.PATTERN.fullmatch(path.name))] if folder.is_dir() else []  # fmt: skip
        return sorted(found)

    def on_train_begin(self, logs=None) -> None:
        found = self.backups()
        for epoch, path in reversed(found):
            try:
                if self.model.optimizer is not None and not self.model.optimizer.built:
                    self.model.optimizer.build(self.model.trainable_variables)
                self.model.load_weights(path)
            except Exception as error:  # truncated or corrupt: fall back to the one before
                log.warning("%s cannot be restored (%s); trying the backup before it", path,
                            first_line(error))  # fmt: skip
                continue
            self.model._initial_epoch = epoch  # how BackupAndRestore tells fit() where to start
            log.info("resuming from the backup of epoch %d (%s)", epoch, path)
            return
        if found:
            log.warning("%s: none of its %d backup(s) could be restored; this phase starts again "
                        "from its first epoch", self.backup_dir, len(found))  # fmt: skip

    def on_epoch_end(self, epoch, logs=None) -> None:
        path = Path(self.backup_dir) / f"epoch-{epoch + 1:04d}.weights.h5"
        ensure_room_for(self.model, path, with_optimizer=False)
        with replacing(path) as temp:
            self.model.save_weights(temp)
        for _, old in self.backups()[:-2]:
            old.unlink(missing_ok=True)

    def on_train_end(self, logs=None) -> None:
        super().on_train_end(logs)
        self.model._initial_epoch = None  # else the next phase's fit() would start there too


class HistoryLog(keras.callbacks.Callback):
    """CSVLogger's history.csv (one row per epoch, appended across phases and resumed runs),
    rewritten whole through a temp file each epoch: CSVLogger appends in place, so a kill mid-row
    left a broken line that the next row continued. A metric that appears later (a learning rate
    logged from phase 2) widens the header instead of shifting the columns."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self._first = True

    def on_train_begin(self, logs=None) -> None:
        self._first = True

    def on_epoch_begin(self, epoch, logs=None) -> None:
        """At a fit's first epoch, drop the rows of that epoch and later: a phase resumed from
        an older backup, or started again, logs them anew (one history per run)."""
        if self._first:
            self._first = False
            rows = read_rows(self.path)
            kept = [row for row in rows if int(row["epoch"]) < epoch]
            if len(kept) < len(rows):
                self._write(kept)

    def on_epoch_end(self, epoch, logs=None) -> None:
        rows = read_rows(self.path)
        rows.append({"epoch": epoch, **{k: _plain_number(v) for k, v in (logs or {}).items()}})
        self._write(rows)

    def _write(self, rows: list[dict]) -> None:
        fields = ["epoch", *sorted({key for row in rows for key in row} - {"epoch"})]
        out = io.StringIO()
        writer = csv.DictWriter(out, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, out.getvalue())


def _plain_number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def read_rows(path: Path) -> list[dict]:
    """The rows of a history.csv, none if there is none yet."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv as {metric: per-epoch values}, keeping the last row of a repeated epoch."""
    rows = {int(row["epoch"]): row for row in read_rows(path)}
    history: dict[str, list[float]] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key != "epoch":
                history.setdefault(key, []).append(float(value) if value else float("nan"))
    return history
