"""test_script.py on the local engine and on Ray Data (--engine ray, a local cluster), same
machine, same exported model, same generated images: images/s and peak memory (summed over the
process tree: Ray's raylet and actors included), and whether predictions.csv is identical.

    python benchmarks/bench_engines.py [--images 20000] [--size 64] [--model_path RUN]

Without --model_path a small MobileNetV2 (alpha 0.35, 64 px) is trained for one epoch here and
exported to TFLite; prediction speed does not depend on how well it learned.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from proctree import run_measured  # noqa: E402


def make_images(root: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        label = ("female", "male")[index % 2]
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        pixels[: size // 2] //= 2 if label == "female" else 1
        Image.fromarray(pixels).save(folder / f"{index:06d}.jpg", quality=90)


def small_run(work: Path, size: int) -> Path:
    make_images(work / "train_data" / "train", 64, size)
    make_images(work / "train_data" / "val", 32, size)
    run = work / "run"
    run_measured([sys.executable, str(REPO / "train_model.py"), "--data_path",
                  str(work / "train_data"), "--output_dir", str(run), "--weights", "none",
                  "--alpha", "0.35", "--image_size", str(size), "--epochs", "1",
                  "--export", "tflite"])  # fmt: skip
    return run


@click.command()
@click.option("--images", default=20_000, help="Images to generate and evaluate.")
@click.option("--size", default=64, help="Their side, and the model's input size.")
@click.option("--model_path", default=None, help="A run with an export; default: trained here.")
def main(images: int, size: int, model_path: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = Path(model_path) if model_path else small_run(work, size)
        make_images(work / "test", images, size)
        rows = {}
        for engine in ("local", "ray"):
            out = work / f"eval_{engine}"
            seconds, peak, _ = run_measured([
                sys.executable, str(REPO / "test_script.py"), "--model_path", str(run),
                "--data_path", str(work / "test"), "--output_dir", str(out),
                "--max_misclassified", "10", "--engine", engine,
            ], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
            rows[engine] = (seconds, peak, (out / "predictions.csv").read_text())
            print(
                f"{engine:>5}: {seconds:7.1f} s  {images / seconds:7.0f} images/s  "
                f"peak {peak / 2**20:7.0f} MB (process tree)",
                flush=True,
            )
        (t_local, m_local, p_local), (t_ray, m_ray, p_ray) = rows["local"], rows["ray"]
        print(
            f"ray/local: time {t_ray / t_local:.2f}x, peak memory {m_ray / m_local:.2f}x; "
            f"predictions.csv identical: {p_local == p_ray}; {os.cpu_count()} CPUs"
        )


if __name__ == "__main__":
    main()
