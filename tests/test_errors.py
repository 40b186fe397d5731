"""UserError, one-line messages, and C++ chatter kept off the terminal."""

from __future__ import annotations

import os
import subprocess
import sys

from gender_cls.errors import UserError, first_line


def test_a_user_error_is_a_value_error():
    assert issubclass(UserError, ValueError)


def test_first_line_cuts_to_one_line_and_names_a_silent_error():
    assert first_line(RuntimeError("disk full\n  at line 3\n")) == "disk full"
    assert first_line(RuntimeError("x" * 50), limit=10) == "x" * 10
    assert first_line(KeyError()) == "KeyError"


def test_silenced_stderr_hides_what_native_code_writes_and_restores_it():
    code = ("import os, sys\n"
            "from gender_cls.errors import silenced_stderr\n"
            "with silenced_stderr():\n"
            "    os.write(2, b'chatter\\n')\n"
            "os.write(2, b'after\\n')\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, timeout=60)  # fmt: skip
    assert out.returncode == 0 and out.stderr == "after\n"
