"""The run folder: files as the umask says, one writer at a time, a dead holder's lock taken
over."""

from __future__ import annotations

import pytest

from gender_cls.errors import UserError


def test_json_artifacts_follow_the_umask_like_model_files(tmp_path):
    import os

    from gender_cls.artifacts.run_folder import write_json

    old = os.umask(0o022)
    try:
        write_json({"a": 1}, tmp_path / "metrics.json")
        (tmp_path / "model.keras").write_bytes(b"")
    finally:
        os.umask(old)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "model.keras").stat().st_mode & 0o777 == 0o644


def test_a_second_writer_is_refused_and_a_dead_holders_lock_is_taken_over(locked_run):
    from gender_cls.artifacts.run_folder import run_lock

    run, holder = locked_run
    with pytest.raises(UserError, match=rf"run: in use by process {holder.pid} \(-c "):
        with run_lock(run):
            pass
    holder.kill()
    holder.wait(timeout=30)
    with run_lock(run), run_lock(run):  # taken over; and re-entrant in one process
        assert str(__import__("os").getpid()) in (run / ".lock").read_text()
