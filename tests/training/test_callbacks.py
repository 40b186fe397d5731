"""Run callbacks: backups, resume points, history rewritten whole."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gender_cls.training.callbacks import EpochBackup, HistoryLog, read_history, read_rows


class StopAfter(keras.callbacks.Callback):
    """Raise at the end of epoch `epoch` (after the callbacks before it ran), as a kill would."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def fit(model, callbacks, epochs=6):
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 1), "float32")
    return model.fit(x, y, epochs=epochs, batch_size=4, verbose=0, callbacks=callbacks)


def test_backup_keeps_two_and_resumes_from_the_newest(tmp_path):
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), [EpochBackup(backup), StopAfter(3)])
    assert [p.name for p in sorted(backup.iterdir())] == ["epoch-0003.weights.h5",
                                                          "epoch-0004.weights.h5"]  # fmt: skip
    history = fit(tiny_model(), [EpochBackup(backup)])
    assert history.epoch == [4, 5]
    assert not backup.exists()  # deleted once the phase completed


@pytest.mark.parametrize("damage", [b"", b"\x89HDF\r\n\x1a\n", None])
def test_a_truncated_backup_falls_back_to_the_one_before(tmp_path, damage, caplog):
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), [EpochBackup(backup), StopAfter(2)])
    newest = backup / "epoch-0003.weights.h5"
    if damage is None:  # cut halfway
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    else:
        newest.write_bytes(damage)
    history = fit(tiny_model(), [EpochBackup(backup)])
    assert history.epoch == [2, 3, 4, 5]
    assert "epoch-0003.weights.h5 cannot be restored" in caplog.text


def test_phases_after_a_resumed_one_start_where_they_are_told(tmp_path):
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), [EpochBackup(backup), StopAfter(1)])
    model = tiny_model()
    assert fit(model, [EpochBackup(backup)], epochs=3).epoch == [2]
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 1), "float32")
    second = model.fit(x, y, initial_epoch=3, epochs=5, verbose=0)
    assert second.epoch == [3, 4]


def test_history_is_rewritten_whole_and_widens_its_header(tmp_path):
    path = tmp_path / "history.csv"
    model = tiny_model()
    fit(model, [HistoryLog(path)], epochs=2)
    lr = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: logs.update(learning_rate=0.1))
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, initial_epoch=2, epochs=3, verbose=0, callbacks=[lr, HistoryLog(path)])
    rows = read_rows(path)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert [row["learning_rate"] for row in rows] == ["", "", "0.1"]
    assert len(read_history(path)["loss"]) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]  # no temp file left


def test_a_repeated_epoch_keeps_its_last_row(tmp_path):
    path = tmp_path / "history.csv"
    log = HistoryLog(path)
    log.on_epoch_end(0, {"loss": 0.9})
    log.on_epoch_end(1, {"loss": 0.8})
    log.on_epoch_end(1, {"loss": 0.7})  # a kill between the row and the backup repeats it
    assert read_history(path) == {"loss": [0.9, 0.7]}


def test_with_every_backup_damaged_the_phase_says_so_and_logs_one_history(tmp_path, caplog):
    """It used to start again at epoch 1 without a word and append a second run of rows."""
    backup, path = tmp_path / "backup", tmp_path / "history.csv"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), [HistoryLog(path), EpochBackup(backup), StopAfter(3)])
    assert len(read_rows(path)) == 4
    for damaged in backup.iterdir():
        damaged.write_bytes(b"")
    history = fit(tiny_model(), [HistoryLog(path), EpochBackup(backup)])
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    assert "none of its 2 backup(s) could be restored; this phase starts again" in caplog.text
    assert [row["epoch"] for row in read_rows(path)] == ["0", "1", "2", "3", "4", "5"]


def test_a_resumed_phase_relogs_the_epochs_after_its_backup_once(tmp_path):
    """Killed after epoch 3 was logged but the newest backup is damaged: resumed from epoch 2's
    backup, epochs 2 and 3 are logged again, each once."""
    backup, path = tmp_path / "backup", tmp_path / "history.csv"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), [HistoryLog(path), EpochBackup(backup), StopAfter(2)])
    (backup / "epoch-0003.weights.h5").write_bytes(b"")
    assert fit(tiny_model(), [HistoryLog(path), EpochBackup(backup)]).epoch == [2, 3, 4, 5]
    assert [row["epoch"] for row in read_rows(path)] == ["0", "1", "2", "3", "4", "5"]
