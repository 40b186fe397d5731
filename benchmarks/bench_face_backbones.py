"""predict.py over a folder of photos with two trained runs: images/s and peak memory, the first
run (the baseline, e.g. --recipe faces-lite0) against the second (e.g. --recipe faces-offline).

    python benchmarks/bench_face_backbones.py BASELINE_RUN RUN [--images DIR] [--runs 2]

Each run predicts with what its card says (its TFLite export and face crop); the face crops are
cached in a fresh folder per repetition, so detection is timed too. Prints the mean wall time,
images/s and peak memory of the process tree of each, and the ratios run / baseline.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import click  # noqa: E402
from proctree import run_measured  # noqa: E402

DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "faces-wild" / "test"


def measure(run: str, images: Path, repeats: int) -> tuple[float, int]:
    """(mean seconds, largest peak bytes) of predict.py on every image under `images`."""
    seconds, peaks = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            args = [sys.executable, str(REPO / "predict.py"), "--image_path", str(images),
                    "--model_path", run, "--json"]  # fmt: skip
            took, peak, _ = run_measured(args, env={**os.environ, "XDG_CACHE_HOME": cache})
        seconds.append(took)
        peaks.append(peak)
    return statistics.mean(seconds), max(peaks)


@click.command()
@click.argument("baseline")
@click.argument("run")
@click.option("--images", type=click.Path(exists=True, path_type=Path), default=DEFAULT_IMAGES)
@click.option("--runs", "repeats", type=click.IntRange(1), default=2)
def main(baseline: str, run: str, images: Path, repeats: int) -> None:
    count = sum(1 for p in images.rglob("*") if p.is_file())
    rows = {name: measure(path, images, repeats) for name, path in (("baseline", baseline),
                                                                    ("run", run))}  # fmt: skip
    for name, (seconds, peak) in rows.items():
        click.echo(f"{name:8} {seconds:6.1f} s  {count / seconds:6.1f} images/s  "
                   f"peak {peak / 2**20:5.0f} MiB  ({baseline if name == 'baseline' else run})")  # fmt: skip
    (base_s, base_peak), (run_s, run_peak) = rows["baseline"], rows["run"]
    click.echo(f"run / baseline: time {run_s / base_s:.2f}, peak memory {run_peak / base_peak:.2f}")


if __name__ == "__main__":
    main()
