"""The error type for bad input (the CLI prints its one-line message and exits with code 2), and
a way to keep native libraries' start-up chatter off the terminal."""

import os
from contextlib import contextmanager


class UserError(ValueError):
    """Bad input from the user; the message names the path or option and the fix."""


class DiskFull(UserError):
    """No room left on the disk under a folder (a write failed, or would have)."""

    def __init__(self, folder, detail: str):
        super().__init__(f"{folder}: the disk is full ({detail}); free some space and run again "
                         "(training: --resume continues from the last complete backup)")  # fmt: skip


def first_line(error: BaseException, limit: int | None = None) -> str:
    """An exception's message cut to its first line (and `limit` characters), for a one-line
    error or warning; its type's name when it has no message."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


@contextmanager
def silenced_stderr():
    """Send file descriptor 2 to /dev/null for the block: C++ code (TensorFlow's start-up, LiteRT's
    "Created TensorFlow Lite XNNPACK delegate") writes there before any log level is read."""
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
