"""Learning-rate range test: the learning rate grows exponentially batch after batch while the
loss is recorded; the weights are restored afterwards. The suggestion is fastai's "valley"."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np


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
