"""The phases of a run: planning them (head, fine-tuning, scratch), their loss, optimizer and
callbacks, and fitting them with resume."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gender_cls.artifacts.disk_space import ensure_room_for
from gender_cls.artifacts.run_folder import (
    HISTORY_FILE,
    STATE_FILE,
    read_json,
    write_json,
)
from gender_cls.atomic import replacing
from gender_cls.config import (
    PRETRAINED_DEFAULTS,
    SCRATCH_DEFAULTS,
    RunConfig,
    TrainConfig,
)
from gender_cls.data.index import (
    DatasetIndex,
)
from gender_cls.data.pipeline import make_dataset
from gender_cls.errors import UserError
from gender_cls.models.backbones import get_backbone
from gender_cls.models.classifier import (
    freeze_base,
    from_scratch,
    get_base,
    unfreeze_last,
)
from gender_cls.training import feature_cache
from gender_cls.training.callbacks import (
    ClassifierCheckpoint,
    EpochBackup,
    HistoryLog,
)
from gender_cls.training.inputs import TrainingData

log = logging.getLogger(__name__)


@dataclass
class Phase:
    """One fit() call: which layers train, for how long, how fast, and what the callbacks watch."""

    name: str
    epochs: int
    lr: float
    unfreeze: int | str | None  # None: base frozen; "all" or a number of layers
    train_batchnorm: bool = False  # True only from scratch: nothing pretrained to protect
    schedule: str = "plateau"
    monitor: str = "val_loss"
    patience: int = 5


def plan_phases(config: RunConfig) -> list[Phase]:
    """Head then fine-tuning for a pretrained base; one phase training everything from scratch."""
    t = config.train
    if from_scratch(config.model):
        epochs = t.head_epochs + t.fine_tune_epochs
        return [Phase("scratch", epochs, **_settings(t, SCRATCH_DEFAULTS), unfreeze="all",
                      train_batchnorm=True)]  # fmt: skip
    phases = []
    if t.head_epochs > 0:
        phases.append(Phase("head", t.head_epochs, **_settings(t, PRETRAINED_DEFAULTS),
                            unfreeze=None))  # fmt: skip
    layers = t.fine_tune_layers
    if layers == "auto":
        layers = get_backbone(config.model.backbone).fine_tune_layers
    if t.fine_tune_epochs > 0 and str(layers) != "0":
        settings = {**_settings(t, PRETRAINED_DEFAULTS), "lr": t.fine_tune_lr}
        phases.append(Phase("fine_tune", t.fine_tune_epochs, **settings, unfreeze=layers))
    if not phases:
        raise UserError("nothing to train: give --head_epochs or --fine_tune_epochs above 0")
    return phases


def _settings(t: TrainConfig, defaults: dict) -> dict:
    """lr, schedule, monitor and patience: as given, else (None or "auto") the defaults."""
    return {
        name: default if getattr(t, name) in (None, "auto") else getattr(t, name)
        for name, default in defaults.items()
    }


def make_loss(t: TrainConfig, num_classes: int) -> keras.losses.Loss:
    """BCE / categorical cross-entropy, or Keras' built-in focal losses."""
    if t.loss == "focal":
        if num_classes == 2:
            return keras.losses.BinaryFocalCrossentropy(
                apply_class_balancing=True,
                alpha=t.focal_alpha,
                gamma=t.focal_gamma,
                label_smoothing=t.label_smoothing,
            )
        return keras.losses.CategoricalFocalCrossentropy(
            alpha=t.focal_alpha, gamma=t.focal_gamma, label_smoothing=t.label_smoothing
        )
    if num_classes == 2:
        return keras.losses.BinaryCrossentropy(label_smoothing=t.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing)


def make_metrics(num_classes: int) -> list:
    accuracy = (
        keras.metrics.BinaryAccuracy(name="accuracy")
        if num_classes == 2
        else keras.metrics.CategoricalAccuracy(name="accuracy")
    )
    return [
        accuracy,
        keras.metrics.AUC(name="auc"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
    ]


def make_optimizer(t: TrainConfig, phase: Phase, steps_per_epoch: int):
    """Adam, AdamW or SGD (Nesterov momentum 0.9) at the phase's learning rate, or on a warm-up +
    cosine schedule over its steps; with `t.ema` it keeps a moving average of the weights."""
    lr = learning_rate = phase.lr
    if phase.schedule == "cosine":
        total = max(1, steps_per_epoch * phase.epochs)
        warmup = min(t.warmup_epochs * steps_per_epoch, total // 2)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else lr, decay_steps=total - warmup,
            warmup_target=lr if warmup else None, warmup_steps=warmup,
        )  # fmt: skip
    options = {"use_ema": t.ema}
    if t.weight_decay is not None:
        options["weight_decay"] = t.weight_decay
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, **options)
    if t.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate, **options)
    return keras.optimizers.Adam(learning_rate, **options)


def make_callbacks(
    run_dir: Path, phase: Phase, t: TrainConfig, classifier: keras.Model | None
) -> list[keras.callbacks.Callback]:
    """The callbacks of one phase; checkpoints/best.keras holds the whole `classifier`. None
    skips it (the cached head phase, whose sub-second epochs a model save would dominate)."""
    checkpoints = run_dir / "checkpoints"
    monitor, patience = phase.monitor, phase.patience
    mode = "max" if monitor == "val_accuracy" else "min"
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        # First, so validation and the callbacks after it see the averaged weights.
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if t.ema else []),
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
        ),  # fmt: skip
    ]
    if phase.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=t.plateau_factor, patience=max(1, patience // 2),
            min_lr=1e-7,
        ))  # fmt: skip
    if classifier is not None:
        path = str(checkpoints / "best.keras")
        callbacks.append(ClassifierCheckpoint(classifier, path, monitor=monitor, mode=mode,
                                              save_best_only=True))  # fmt: skip
    callbacks += [
        HistoryLog(run_dir / HISTORY_FILE),
        # Last, so an epoch is logged before its backup: a kill in between repeats a row, never
        # loses one (read_history keeps the last row per epoch).
        EpochBackup(checkpoints / f"backup_{phase.name}"),
    ]
    if t.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs")))
    return callbacks


def _cached_head(
    model: keras.Model, index: DatasetIndex, config: RunConfig, image_size: int, batch_size: int
):
    """(head model, train features, val features) for a frozen, unaugmented phase 1; `batch_size`
    is the global batch (per-replica batch x replicas), as for the image datasets."""

    d = config.data
    features, head = feature_cache.split_model(model)
    cached = {}
    for name in ("train", "val"):
        images = make_dataset(index.splits[name], index.num_classes, image_size, batch_size,
                              resize=d.resize)  # fmt: skip
        feats = feature_cache.extract(features, images)
        cached[name] = feature_cache.feature_dataset(
            feats, index.splits[name], index.num_classes, batch_size, training=name == "train",
            oversample=d.oversample, seed=d.seed,
        )  # fmt: skip
    log.info("phase head: base features cached for %d images", len(index.splits["train"]))
    return head, cached["train"], cached["val"]


def prepare_layers(model: keras.Model, phase: Phase) -> None:
    if phase.unfreeze is None:
        freeze_base(model)
    elif phase.train_batchnorm:
        get_base(model).trainable = True
    else:
        count = unfreeze_last(model, phase.unfreeze)
        log.info("fine-tuning: %d layers of the base unfrozen (BatchNorm stays frozen)", count)


def fit_phases(
    model: keras.Model,
    augmented: keras.Model,
    data: TrainingData,
    config: RunConfig,
    run_dir: Path,
    strategy,
    verbose: int | str,
    alone: bool = True,
) -> tuple[int, int | None]:
    """Fit every planned phase, skipping those a resumed run finished; returns (epochs trained,
    the epoch phase 2 started at or None)."""
    state_path = run_dir / STATE_FILE
    state = read_json(state_path) if state_path.is_file() else {"phases": {}}
    num_classes = data.index.num_classes
    epoch, phase2_start = 0, None
    for phase in plan_phases(config):
        if phase.name == "fine_tune":
            phase2_start = epoch
        done = state["phases"].get(phase.name)
        if done:  # finished before an interruption: take its weights and go on
            model.load_weights(run_dir / done["weights"])
            epoch = done["end_epoch"]
            continue
        prepare_layers(model, phase)
        start = time.perf_counter()
        fit_model, fit_train, fit_val = augmented, data.train_ds, data.val_ds
        # The feature cache predicts the whole split in one process: not with several.
        cached = phase.name == "head" and not config.train.head_augment and alone
        if cached:
            fit_model, fit_train, fit_val = _cached_head(
                model, data.index, config, data.image_size, data.batch_size
            )
        with strategy.scope():
            fit_model.compile(
                optimizer=make_optimizer(config.train, phase, _steps_per_epoch(fit_train, data)),
                loss=make_loss(config.train, num_classes),
                metrics=make_metrics(num_classes),
                jit_compile=config.train.jit or keras.backend.backend() == "jax",
            )
        try:
            history = fit_model.fit(
                fit_train, validation_data=fit_val, initial_epoch=epoch,
                epochs=epoch + phase.epochs,
                callbacks=make_callbacks(run_dir, phase, config.train, None if cached else model),
                class_weight=data.class_weights, verbose=verbose, shuffle=False,
            )  # fmt: skip
        except tf.errors.FailedPreconditionError as error:  # assert_cardinality: files broke
            if "expected to contain" not in str(error):
                raise
            raise UserError(f"{config.data.data_path}: too many training images became "
                            "unreadable during training for an epoch to fill; check the "
                            "files and train again") from None  # fmt: skip
        end_epoch = history.epoch[-1] + 1 if history.epoch else epoch + phase.epochs
        weights_file = f"checkpoints/{phase.name}.weights.h5"
        ensure_room_for(model, run_dir / weights_file, with_optimizer=False)
        with replacing(run_dir / weights_file) as temp:
            model.save_weights(temp)
        state["phases"][phase.name] = {"end_epoch": end_epoch, "weights": weights_file}
        write_json(state, state_path)
        _log_phase(phase, history.history, epoch, end_epoch, time.perf_counter() - start)
        epoch = end_epoch
    return epoch, phase2_start


def _steps_per_epoch(dataset, data: TrainingData) -> int:
    """Batches per epoch: the dataset's cardinality, else counted from the training split."""
    steps = int(dataset.cardinality())
    return steps if steps > 0 else math.ceil(len(data.index.splits["train"]) / data.batch_size)


def kept_epoch(history: dict, monitor: str) -> int | None:
    """Index of the epoch EarlyStopping restores: the first best value of `monitor`."""
    values = np.asarray(history.get(monitor, []), np.float64)
    if values.size == 0 or np.all(np.isnan(values)):
        return None
    return int(np.nanargmax(values) if monitor == "val_accuracy" else np.nanargmin(values))


def _log_phase(phase: Phase, history: dict, first: int, end: int, seconds: float) -> None:
    """One line per phase: its epochs and time, and the epoch whose weights were kept."""
    line = f"phase {phase.name}: epochs {first + 1}-{end} in {seconds:.0f}s, lr {phase.lr:g}"
    best = kept_epoch(history, phase.monitor)
    if best is not None:
        metrics = ", ".join(f"{name} {history[name][best]:.4f}"
                            for name in ("val_loss", "val_accuracy") if name in history)  # fmt: skip
        line += f"; kept epoch {first + best + 1} (best {phase.monitor}): {metrics}"
    log.info(line)
