"""Training throughput on the JAX backend: one process, then N processes on this machine (one
--coordinator on localhost), the same global batch. Prints images/s of the last epoch (steps
after compilation) and the ratio N/1.

    python benchmarks/bench_multihost.py [--data_path ../shared/data/faces] [--processes 2]
        [--image_size 96] [--global_batch 32] [--epochs 3]

On one machine the processes share its cores: the figure measures the cost of the machinery
(sharding, all-reduce over gloo), not the gain of more machines.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
EPOCH_LINE = re.compile(r"^(\d+)/\1 - \S+ - (\d+(?:\.\d+)?)(ms|s)/step", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_epoch_step_seconds(output: str) -> float:
    """Seconds per step of the last epoch, from Keras' per-epoch line ('24/24 - 9s - 372ms/step')."""
    steps = EPOCH_LINE.findall(output)
    if not steps:
        raise RuntimeError(f"no epoch line in the output:\n{output[-2000:]}")
    _, value, unit = steps[-1]
    return float(value) / (1000 if unit == "ms" else 1)


def train(data: str, out: Path, processes: int, image_size: int, global_batch: int,
          epochs: int) -> float:  # fmt: skip
    """Images/s of the last epoch with `processes` processes."""
    args = [sys.executable, str(REPO / "train_model.py"), "--data_path", data, "--weights", "none",
            "--alpha", "0.35", "--image_size", str(image_size), "--epochs", str(epochs),
            "--patience", "100", "--no_augment", "--export", "none",
            "--batch_size", str(global_batch // processes), "--output_dir", str(out)]  # fmt: skip
    if processes == 1:
        done = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=3600)
        outputs = [done.stdout + done.stderr]
    else:
        port = free_port()
        runs = [subprocess.Popen([*args, "--coordinator", f"127.0.0.1:{port}", "--num_processes",
                                  str(processes), "--process_id", str(i)], env=ENV,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for i in range(processes)]  # fmt: skip
        outputs = [run.communicate(timeout=3600)[0] for run in runs]
    return global_batch / last_epoch_step_seconds(outputs[0])


@click.command()
@click.option("--data_path", default=str(REPO.parent / "shared" / "data" / "faces"))
@click.option("--processes", default=2)
@click.option("--image_size", default=96)
@click.option("--global_batch", default=32)
@click.option("--epochs", default=3)
def main(data_path, processes, image_size, global_batch, epochs) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one = train(data_path, Path(tmp) / "one", 1, image_size, global_batch, epochs)
        print(f"1 process:  {one:7.1f} images/s", flush=True)
        many = train(data_path, Path(tmp) / "many", processes, image_size, global_batch, epochs)
        print(f"{processes} processes: {many:7.1f} images/s")
        print(
            f"ratio {processes}/1: {many / one:.2f} (global batch {global_batch}, "
            f"{image_size} px, {os.cpu_count()} CPUs)"
        )


if __name__ == "__main__":
    main()
