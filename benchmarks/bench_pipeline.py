"""Images/s of Keras' legacy ImageDataGenerator vs our tf.data pipeline, measured in one run.

    python benchmarks/bench_pipeline.py                 # synthetic JPEGs made here
    python benchmarks/bench_pipeline.py --data ../shared/data/faces/train

Prints (a) ImageDataGenerator with augmentation, (b) our pipeline with the same augmentation,
(c) our pipeline decode + resize only, and the ratios b/a (target >= 5) and b/c (target >= 0.4).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import click  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

AUGMENT = dict(
    rotation_range=20,
    zoom_range=0.2,
    shear_range=10,
    width_shift_range=0.1,
    height_shift_range=0.1,
    horizontal_flip=True,
    brightness_range=(0.8, 1.2),
)


def make_jpegs(root: Path, n: int, seed: int = 0) -> Path:
    """n synthetic 640x480 photos in two class folders."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((640, 480), Image.BILINEAR)
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"img_{i:04d}.jpg", quality=90)
    return root


def images_per_second(batches, n_images: int) -> float:
    seen, start = 0, time.perf_counter()
    for x, _ in batches:
        seen += len(x)
        if seen >= n_images:
            break
    return seen / (time.perf_counter() - start)


def bench_idg(data: Path, size: int, batch: int, n_images: int) -> float:
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    flow = ImageDataGenerator(**AUGMENT).flow_from_directory(
        str(data), target_size=(size, size), batch_size=batch, class_mode="binary", seed=0
    )
    return images_per_second(flow, n_images)


def bench_ours(data: Path, size: int, batch: int, n_images: int, augment: bool) -> float:
    from gender_cls.config import AugmentConfig
    from gender_cls.data.index import discover
    from gender_cls.data.pipeline import make_dataset

    config = AugmentConfig(**AUGMENT) if augment else AugmentConfig.off()
    index = discover(data, val_split=0.01)
    ds = make_dataset(index.splits["train"], 2, size, batch, training=True, augment=config)
    ds = ds.repeat()
    images_per_second(ds, batch * 2)  # warm-up: trace the graphs, start the threads
    return images_per_second(ds, n_images)


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--images", "n_images", default=512, show_default=True, help="Images timed per run.")
@click.option("--size", default=224, show_default=True)
@click.option("--batch_size", default=32, show_default=True)
def main(data: Path | None, n_images: int, size: int, batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = data or make_jpegs(Path(tmp) / "jpegs", n_images)
        print(f"data: {data}  size: {size}px  batch: {batch_size}  cores: {os.cpu_count()}")
        a = bench_idg(data, size, batch_size, n_images)
        b = bench_ours(data, size, batch_size, n_images, augment=True)
        c = bench_ours(data, size, batch_size, n_images, augment=False)
    print(f"(a) ImageDataGenerator + augmentation : {a:8.1f} images/s")
    print(f"(b) gender_cls pipeline + augmentation: {b:8.1f} images/s")
    print(f"(c) gender_cls decode + resize only   : {c:8.1f} images/s")
    print(f"b/a = {b / a:.2f} (target >= 5)   b/c = {b / c:.2f} (target >= 0.4)")


if __name__ == "__main__":
    main()
