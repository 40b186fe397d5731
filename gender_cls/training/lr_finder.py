"""Learning-rate range test: the learning rate grows exponentially batch after batch while the
loss is recorded; the weights are restored afterwards. The suggestion is fastai's "valley"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from gender_cls import plots
from gender_cls.artifacts.run_folder import write_json
from gender_cls.config import RunConfig
from gender_cls.training.checks import check_before_work
from gender_cls.training.inputs import TrainingData, data_and_model
from gender_cls.training.phases import make_loss, plan_phases, prepare_layers
from gender_cls.training.strategy import make_strategy


@dataclass
class LrSweep:
    lrs: list[float]
    losses: list[float]
    suggestion: float


class _ExponentialLr(keras.callbacks.Callback):
    """Sets lr = start * (end / start) ** (step / steps) before each batch, records the loss
    after it, and stops once the loss has diverged (above 4x its lowest, or NaN)."""

    def __init__(self, start: float, end: float, steps: int):
        super().__init__()
        self.start, self.end, self.steps = start, end, steps
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self._mean = 0.0  # Keras logs the running mean of the epoch's batch losses

    def _lr(self, step: int) -> float:
        return self.start * (self.end / self.start) ** (step / max(1, self.steps - 1))

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(self._lr(len(self.lrs)))

    def on_train_batch_end(self, batch, logs=None):
        n, mean = len(self.losses) + 1, float(logs["loss"])
        loss = n * mean - (n - 1) * self._mean  # this batch's own loss
        self._mean = mean
        self.lrs.append(self._lr(len(self.lrs)))
        self.losses.append(loss)
        if not np.isfinite(loss) or loss > 4 * min(self.losses):
            self.model.stop_training = True


def smooth(losses: list[float], beta: float = 0.98) -> np.ndarray:
    """Exponential moving average with bias correction, as fastai smooths the batch losses."""
    out, average = [], 0.0
    for i, loss in enumerate(losses, 1):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta**i))
    return np.asarray(out)


def valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's suggestion: the longest stretch where the smoothed loss keeps falling, and a
    point a little past its first third (loss still falling steeply, far from divergence)."""
    losses = list(smooth(losses))
    n = len(losses)
    longest = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[end] < longest[i]:
            end, start = i, i - longest[i]
    third = (end - start) / 3
    return float(lrs[min(n - 1, start + int(third) + int(third / 2))])


def lr_range_test(
    model: keras.Model,
    train_ds,
    loss,
    steps: int = 100,
    start: float = 1e-7,
    end: float = 1.0,
    class_weight: dict | None = None,
) -> LrSweep:
    """Sweep the learning rate from `start` to `end` over at most `steps` batches of `train_ds`
    (repeated as needed) with Adam; `model`'s weights are restored afterwards."""
    weights = model.get_weights()
    recorder = _ExponentialLr(start, end, steps)
    model.compile(optimizer=keras.optimizers.Adam(start), loss=loss)
    try:
        model.fit(train_ds.repeat(), steps_per_epoch=steps, epochs=1, callbacks=[recorder],
                  class_weight=class_weight, verbose=0)  # fmt: skip
    finally:
        model.set_weights(weights)
    return LrSweep(recorder.lrs, recorder.losses, valley(recorder.lrs, recorder.losses))


def find_lr(config: RunConfig, output_dir: str | Path, steps: int = 100) -> LrSweep:
    """The learning-rate range test alone, on the first phase of the run `config` describes:
    writes split.json, lr_finder.png and lr_finder.json into `output_dir`."""
    check_before_work(config)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data, model, augmented = data_and_model(config, out, False, make_strategy("none"))
    return range_test(model, augmented, data, config, out, steps)


def range_test(model, augmented, data: TrainingData, config: RunConfig, out: Path,
               steps: int = 100) -> LrSweep:  # fmt: skip
    """Run the range test with the layers the first phase trains; plot it and save its numbers."""
    prepare_layers(model, plan_phases(config)[0])
    loss = make_loss(config.train, data.index.num_classes)
    sweep = lr_range_test(augmented, data.train_ds, loss, steps, class_weight=data.class_weights)
    plots.lr_finder(sweep.lrs, sweep.losses, smooth(sweep.losses), sweep.suggestion,
                    out / "lr_finder.png")  # fmt: skip
    record = {"suggestion": sweep.suggestion, "lrs": sweep.lrs, "losses": sweep.losses}
    write_json(record, out / "lr_finder.json")
    return sweep
