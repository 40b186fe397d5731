"""Training images/s with augmentation in the input pipeline (OpenCV on the CPU, the baseline)
vs in the model (`--augment_on gpu`), in one run; a decode-only run shows the ceiling.

    python benchmarks/bench_augment.py --data ../shared/data/faces --size 224 --steps 20

Phase-1 training (frozen base, random weights: the speed is ImageNet's) with the default
augmentation plus brightness/contrast, over the real decode path of `data`'s train split. On a
GPU the in-model warp runs on the accelerator; on a CPU both compete for the same cores.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click  # noqa: E402
import keras  # noqa: E402

from gender_cls.config import AugmentConfig, ModelConfig  # noqa: E402
from gender_cls.data.augment.in_model import with_augmentation  # noqa: E402
from gender_cls.data.index import discover  # noqa: E402
from gender_cls.data.pipeline import make_dataset  # noqa: E402
from gender_cls.models.classifier import build_classifier, freeze_base  # noqa: E402

AUGMENT = AugmentConfig(brightness_range=(0.8, 1.2), contrast_range=0.2)


def images_per_second(split, placement: str, size: int, batch: int, steps: int, alpha: float):
    """Train `steps` batches after a warm-up fit; placement is cpu, gpu or none (no augmentation)."""
    keras.utils.set_random_seed(0)
    model = build_classifier(ModelConfig(weights="none", alpha=alpha), 2, size)
    freeze_base(model)
    if placement == "gpu":
        model = with_augmentation(model, AUGMENT, seed=0)
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    augment = AUGMENT if placement == "cpu" else None
    ds = make_dataset(split, 2, size, batch, training=True, augment=augment).repeat()
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)  # trace and warm up
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * batch / (time.perf_counter() - start)


@click.command()
@click.option("--data", default="../shared/data/faces", show_default=True,
              type=click.Path(exists=True, file_okay=False))  # fmt: skip
@click.option("--size", default=224, show_default=True)
@click.option("--alpha", default=1.0, show_default=True, help="MobileNetV2 width.")
@click.option("--batch_size", default=64, show_default=True)
@click.option("--steps", default=20, show_default=True)
def main(data, size, alpha, batch_size, steps) -> None:
    import tensorflow as tf

    split = discover(data).splits["train"]
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    print(f"{len(split)} training images, {size}px, MobileNetV2 alpha {alpha}, batch {batch_size}, "
          f"{steps} timed steps, devices {devices}")  # fmt: skip
    rates = {p: images_per_second(split, p, size, batch_size, steps, alpha)
             for p in ("cpu", "gpu", "none")}  # fmt: skip
    for placement, rate in rates.items():
        label = {"cpu": "augment in tf.data (CPU)", "gpu": "augment in the model",
                 "none": "no augmentation"}[placement]  # fmt: skip
        print(f"{label:26s} {rate:8.1f} images/s  x{rate / rates['cpu']:.2f} vs CPU placement")


if __name__ == "__main__":
    main()
