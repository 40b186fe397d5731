"""Training throughput (images/s) of the classifier: float32 vs mixed precision, with and without
XLA, measured in one run on whatever device Keras sees. Backend-agnostic (KERAS_BACKEND).

    python benchmarks/bench_train.py --backbone mobilenetv2 --size 224 --batch_size 64
    python benchmarks/bench_train.py --modes fp32,fp32+xla,mixed+xla --steps 30
    python benchmarks/bench_train.py --augment   # each mode also with the in-model augmentation

The data is a fixed random batch already on the host, so the figure is the model's speed, not the
input pipeline's. Weights are random (weights=None): the speed is the same as with ImageNet's.
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
import numpy as np  # noqa: E402

from gender_cls.config import AugmentConfig, ModelConfig  # noqa: E402
from gender_cls.data.augment.in_model import with_augmentation  # noqa: E402
from gender_cls.models.classifier import build_classifier, get_base  # noqa: E402


def images_per_second(backbone: str, size: int, batch: int, steps: int, mode: str) -> float:
    """Train every layer for `steps` batches after two warm-up batches; returns images/s.

    A mode ending in "+aug" trains through the in-model augmentation (`--augment_on gpu`).
    """
    keras.mixed_precision.set_global_policy("mixed_float16" if "mixed" in mode else "float32")
    try:
        keras.utils.set_random_seed(0)
        model = build_classifier(ModelConfig(backbone=backbone, weights="none"), 2, size)
        get_base(model).trainable = True
        if mode.endswith("+aug"):
            augment = AugmentConfig(brightness_range=(0.8, 1.2), contrast_range=0.2)
            model = with_augmentation(model, augment, seed=0)
        model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy",
                      jit_compile="xla" in mode)  # fmt: skip
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
        y = rng.integers(0, 2, (batch, 1)).astype("float32")
        for _ in range(2):
            model.train_on_batch(x, y)
        start = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(x, y)
        float(np.asarray(loss))  # wait for the device
        return steps * batch / (time.perf_counter() - start)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@click.command()
@click.option("--backbone", "backbones", multiple=True, default=["mobilenetv2", "resnet50"],
              show_default=True)  # fmt: skip
@click.option("--size", default=224, show_default=True)
@click.option("--batch_size", default=64, show_default=True)
@click.option("--steps", default=20, show_default=True)
@click.option("--modes", default="fp32,fp32+xla,mixed+xla", show_default=True,
              help="Comma-separated; the first is the baseline of the ratios.")  # fmt: skip
@click.option("--augment", is_flag=True, help="Also time each mode with in-model augmentation.")
def main(backbones, size, batch_size, steps, modes, augment) -> None:
    modes = modes.split(",")
    modes += [f"{mode}+aug" for mode in modes] if augment else []
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, "
          f"{size}px, batch {batch_size}, {steps} timed steps")  # fmt: skip
    for backbone in backbones:
        rates = {m: images_per_second(backbone, size, batch_size, steps, m) for m in modes}
        base = rates[modes[0]]
        for mode, rate in rates.items():
            print(
                f"{backbone:12s} {mode:14s} {rate:9.1f} images/s  x{rate / base:.2f} vs {modes[0]}"
            )


if __name__ == "__main__":
    main()
