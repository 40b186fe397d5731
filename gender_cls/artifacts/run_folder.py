"""The run folder: the names of its files, its writer's lock, staging a new run beside the old and
swapping it in, JSON files in it."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gender_cls import json_text
from gender_cls.atomic import write_text
from gender_cls.errors import UserError

MODEL_FILE = "model.keras"
META_FILE = "model.json"
CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
SPLIT_FILE = "split.json"
HISTORY_FILE = "history.csv"
NO_FACE_FILE = "no_face_found.txt"  # images the face crop found no face in
RUN_ENTRIES = (MODEL_FILE, META_FILE, CONFIG_FILE, STATE_FILE, SPLIT_FILE, HISTORY_FILE,
               NO_FACE_FILE, "training_plots", "checkpoints", "logs")  # fmt: skip


LOCK_FILE = ".lock"  # the writer's lock of a run folder; names the process that holds it
_held_locks: set[Path] = set()
INHERITED_LOCKS = "GENDER_CLS_INHERITED_LOCKS"


def write_json(data: Any, path: str | Path) -> None:
    """Write JSON atomically: a temp file beside the target, then rename."""
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def run_lock(folder: str | Path) -> Iterator[None]:
    """Hold the folder's writer lock for the block: an OS file lock, released by the kernel when
    its process ends, so a dead holder's lock is simply taken over. Another live holder is a
    UserError naming it. Re-entrant within a process (training's export takes it again)."""
    folder = Path(folder).resolve()
    if folder in _held_locks or _held_by_parent(folder):
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 300, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(f"{folder}: in use by {holder}; wait until it ends, or use another "
                        "folder") from None  # fmt: skip
    command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()} ({command[:200]})".encode(), 0)
    _held_locks.add(folder)
    try:
        yield
    finally:
        _held_locks.discard(folder)
        os.close(fd)  # releases the lock


def lock_inheriting_env() -> dict[str, str]:
    """The environment for a child process that works in the folders this process holds
    locked, while this process waits for it (an export run under another Keras backend)."""
    held = {"pid": os.getpid(), "folders": sorted(str(f) for f in _held_locks)}
    return {**os.environ, INHERITED_LOCKS: json.dumps(held)}


def _held_by_parent(folder: Path) -> bool:
    try:
        held = json.loads(os.environ.get(INHERITED_LOCKS, "{}"))
    except json.JSONDecodeError:
        return False
    return held.get("pid") == os.getppid() and str(folder) in held.get("folders", [])


def read_json(path: str | Path, max_bytes: int | None = None) -> dict:
    """A JSON file written by training; `max_bytes` refuses a larger file before reading it."""
    try:
        size = os.stat(path).st_size
        if max_bytes is not None and size > max_bytes:
            raise UserError(f"{path}: {size:,} bytes, more than the {max_bytes:,} such a file "
                            "may have; it is not one written by training")  # fmt: skip
        data = Path(path).read_bytes()
    except OSError as error:
        raise UserError(
            f"{path}: cannot read ({error}); it should be the JSON written by training"
        ) from None
    return parse_json(data, path)


def parse_json(data: bytes | str, source) -> dict:
    """JSON text (UTF-8 bytes or str), or a one-line UserError naming `source` for bytes that
    are not UTF-8, not JSON, or nested past the parser's recursion limit."""
    try:
        return json_text.loads(data)
    except json_text.JsonError as error:
        raise UserError(f"{source}: cannot read ({error}); it should be the JSON written by "
                        "training") from None  # fmt: skip


def prepare_run_dir(run_dir: str | Path, overwrite: bool = False, resume: bool = False) -> Path:
    """Create the run directory; refuse one that holds another run unless told what to do."""
    run_dir = Path(run_dir)
    existing = [name for name in RUN_ENTRIES if (run_dir / name).exists()]
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise UserError(f"{run_dir}: no run to resume (no {CONFIG_FILE}); drop --resume")
        return run_dir
    if existing and not overwrite:
        raise UserError(
            f"{run_dir}: already holds a run ({', '.join(existing)}); pass --overwrite to "
            "replace it, --resume to continue it, or another --output_dir"
        )
    for name in existing:
        target = run_dir / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def run_entries(run_dir: Path) -> list[Path]:
    """What a run wrote in its folder: RUN_ENTRIES, its face cache and its exports (model*)."""
    if not run_dir.is_dir():
        return []
    names = {*RUN_ENTRIES, "face_cache"}
    return sorted(p for p in run_dir.iterdir() if p.name in names or p.name.startswith("model"))


def staging_dir(run_dir: Path) -> Path:
    """A fresh folder inside a locked run to train its replacement in; those left by killed
    runs are removed (the lock says no one else uses them)."""
    for left in run_dir.glob(".new-*"):
        shutil.rmtree(left, ignore_errors=True)
    staging = run_dir / f".new-{os.getpid()}"
    staging.mkdir()
    return staging


def swap_in(staging: Path, run_dir: Path) -> None:
    """Replace every entry of the old run (stale exports included) by the new run's."""
    old = run_dir / f".old-{os.getpid()}"
    old.mkdir()
    for entry in run_entries(run_dir):
        entry.rename(old / entry.name)
    for entry in staging.iterdir():
        if entry.name != LOCK_FILE:
            entry.rename(run_dir / entry.name)
    shutil.rmtree(old)
    shutil.rmtree(staging)


def discard_run(run_dir: Path, created: bool) -> None:
    """Remove a run that failed before its first epoch: the folder when this run made it, else
    what the run wrote into it."""
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for name in (*RUN_ENTRIES, "face_cache"):
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists():
            target.unlink()
