"""Phase-1 epoch time with the frozen base run every epoch vs the feature cache, in one run.

    python benchmarks/bench_feature_cache.py --data ../shared/data/faces [--size 224 --epochs 4]

Both runs train the same head on the same frozen MobileNetV2 base (random weights saved to a file,
so no download is needed), without augmentation. Prints the mean time of epochs 2..N of each,
their ratio (target >= 20), and both final validation accuracies.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click  # noqa: E402
import keras  # noqa: E402

from gender_cls.config import AugmentConfig, DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from gender_cls.models.classifier import build_base  # noqa: E402
from gender_cls.training.run import train  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def run(data, out: Path, size, epochs, weights, alpha, cached: bool, timer) -> tuple[dict, float]:
    config = RunConfig(
        DataConfig(data, image_size=size, batch_size=32),
        AugmentConfig.off(),
        ModelConfig(weights=weights, alpha=alpha),
        TrainConfig(output_dir=str(out), head_epochs=epochs, patience=100, head_augment=not cached),
    )
    import gender_cls.training.phases as phases

    original = phases.make_callbacks
    phases.make_callbacks = lambda *a, **k: original(*a, **k) + [timer]
    start = time.perf_counter()
    try:
        return train(config, verbose=0).card.validation, time.perf_counter() - start
    finally:
        phases.make_callbacks = original


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--size", default=224, show_default=True)
@click.option("--epochs", default=4, show_default=True)
@click.option("--alpha", default=1.0, show_default=True)
@click.option(
    "--base_weights",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="A trained base (.weights.h5) so the accuracies mean something [default: random].",
)
def main(data: str, size: int, epochs: int, alpha: float, base_weights: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        weights = base_weights
        if weights is None:
            base, _ = build_base(ModelConfig(weights="none", alpha=alpha), size)
            weights = str(Path(tmp) / "base.weights.h5")
            base.save_weights(weights)
        results = {}
        for name, cached in (("frozen base every epoch", False), ("feature cache", True)):
            timer = EpochTimer()
            out = Path(tmp) / name.replace(" ", "_")
            report, wall = run(data, out, size, epochs, weights, alpha, cached, timer)
            results[name] = (timer.times, report, wall)
    for name, (times, report, wall) in results.items():
        later = sum(times[1:]) / max(1, len(times) - 1)
        acc = report["at_0.5"]["accuracy"] if "at_0.5" in report else report["argmax"]["accuracy"]
        print(f"{name:24s} first epoch {times[0]:7.2f}s  later epochs {later:7.3f}s  "
              f"whole run {wall:6.1f}s  val acc {acc:.4f}")  # fmt: skip
    (t_full, _, _), (t_cache, _, _) = results.values()
    ratio = (sum(t_full[1:]) / len(t_full[1:])) / (sum(t_cache[1:]) / len(t_cache[1:]))
    print(f"later-epoch speed-up: x{ratio:.1f} (target >= 20)")


if __name__ == "__main__":
    main()
