"""Run a command and measure its wall time and peak memory summed over its whole process tree
(Ray's raylet and actors, or the processes of a multi-process run, included), from /proc."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and every descendant (shared pages counted in each)."""
    tree, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        todo += tree.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def run_measured(args: list[str], timeout: float = 3600, **kwargs) -> tuple[float, int, str]:
    """(seconds, peak tree RSS in bytes, output) of `args`; raises if it fails. The output goes
    to a temp file: read from a pipe only at the end, more than the pipe's 64 KiB blocked the
    command forever."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, text=True,
                                   **kwargs)  # fmt: skip
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            if time.perf_counter() - start > timeout:
                process.kill()
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        output.seek(0)
        out = output.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed ({process.returncode}):\n{out[-3000:]}")
    return seconds, peak, out
