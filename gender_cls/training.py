"""Two-phase fine-tuning: frozen base then the last layers unfrozen, callbacks, resumable runs."""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gender_cls import artifacts, metrics, multihost, plots
from gender_cls.atomic import replacing, write_text
from gender_cls.augment_layer import resolve_placement, with_augmentation
from gender_cls.backbones import get_backbone
from gender_cls.config import (
    PRETRAINED_DEFAULTS,
    SCRATCH_DEFAULTS,
    AugmentConfig,
    FaceCrop,
    RunConfig,
    TrainConfig,
)
from gender_cls.data import (
    DatasetIndex,
    check_readable,
    class_weights,
    discover,
    drop_unreadable,
    find_unreadable,
)
from gender_cls.distribute import make_strategy
from gender_cls.errors import UserError, first_line
from gender_cls.faces import CropCache, crop_split, make_detector
from gender_cls.lr_finder import LrSweep, lr_range_test, smooth
from gender_cls.models import (
    build_classifier,
    check_imagenet_weights,
    check_weights_file,
    copy_classifier,
    freeze_base,
    from_scratch,
    get_base,
    precision_policy,
    unfreeze_last,
)
from gender_cls.pipeline import make_dataset, mixup
from gender_cls.run_callbacks import ClassifierCheckpoint, EpochBackup, HistoryLog, read_history

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


@dataclass
class TrainingData:
    """The split, the input size and the datasets a run trains on."""

    index: DatasetIndex
    image_size: int
    batch_size: int  # global: per-replica batch x replicas
    train_ds: object
    val_ds: object
    class_weights: dict[int, float] | None


@dataclass
class TrainingResult:
    run_dir: Path
    model_path: Path
    card: artifacts.ModelCard
    history: dict[str, list[float]]
    phase2_start: int | None
    written: list[Path] = field(default_factory=list)


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
        HistoryLog(run_dir / artifacts.HISTORY_FILE),
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
    from gender_cls import feature_cache

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


def _prepare_layers(model: keras.Model, phase: Phase) -> None:
    if phase.unfreeze is None:
        freeze_base(model)
    elif phase.train_batchnorm:
        get_base(model).trainable = True
    else:
        count = unfreeze_last(model, phase.unfreeze)
        log.info("fine-tuning: %d layers of the base unfrozen (BatchNorm stays frozen)", count)


def _load_index(config: RunConfig, run_dir: Path, resume: bool) -> DatasetIndex:
    split_file = run_dir / artifacts.SPLIT_FILE
    if resume and split_file.is_file():  # the same split as before the interruption, re-checked
        return _checked(DatasetIndex.load(split_file))
    index = _checked(discover(config.data.data_path, config.data.val_split, config.data.seed))
    index.save(split_file)
    return index


def _checked(index: DatasetIndex) -> DatasetIndex:
    """check_readable; with several processes each decodes its share of the files and they
    pool what they found."""
    cluster = multihost.current()
    if cluster is None:
        return check_readable(index)
    paths = index.all_paths()[cluster.process_id :: cluster.num_processes]
    found = multihost.allgather_json(find_unreadable(paths))
    return drop_unreadable(index, [tuple(bad) for part in found for bad in part])


def validation_report(model, index: DatasetIndex, val_ds, t: TrainConfig) -> dict:
    """The validation set predicted by the trained model, calibrated (with `t.calibrate`) and
    its threshold tuned: metrics.validation_report."""
    scores = np.asarray(model.predict(val_ds, verbose=0), np.float64)
    labels = np.asarray(index.splits["val"].labels)
    if len(scores) != len(labels):
        raise RuntimeError("a validation image became unreadable during training; run again")
    if index.num_classes == 2:
        scores = np.stack([1.0 - scores.ravel(), scores.ravel()], axis=1)
    return metrics.validation_report(labels, scores, index.class_names, t.threshold_metric,
                                     t.calibrate)  # fmt: skip


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    output_model: str | None = None,
    verbose: int | str = "auto",
) -> TrainingResult | None:
    """Train a classifier as `config` says and write the run directory; returns what it wrote.
    With several processes (multihost.join), process 0 does this and the others only train
    alongside it (returning None)."""
    cluster = multihost.current()
    if cluster is not None and not cluster.is_writer:
        if not resume:
            check_before_work(config)
        return _train_as_peer(resume, verbose)
    if resume:
        run_dir = artifacts.prepare_run_dir(config.train.output_dir, resume=True)
        with artifacts.run_lock(run_dir):
            config = RunConfig.load(run_dir / artifacts.CONFIG_FILE)
            check_before_work(config)
            return _train(config, run_dir, True, output_model, verbose)
    check_before_work(config)
    run_dir = Path(config.train.output_dir)
    created = not run_dir.exists()
    with artifacts.run_lock(run_dir):
        if overwrite and artifacts.run_entries(run_dir):
            return _train_beside(config, run_dir, output_model, verbose)
        artifacts.prepare_run_dir(run_dir, overwrite)
        try:
            config.save(run_dir / artifacts.CONFIG_FILE)
            return _train(config, run_dir, False, output_model, verbose)
        except BaseException:
            if not (run_dir / artifacts.HISTORY_FILE).is_file():  # failed before its 1st epoch
                artifacts.discard_run(run_dir, created)
            raise


def _train_as_peer(resume: bool, verbose: int | str) -> None:
    """A process other than 0: train in a scratch folder that starts as a copy of process 0's
    run state (its config, split, finished phases and backups), then discard it."""
    with tempfile.TemporaryDirectory(prefix="gender_cls-peer-") as scratch:
        run_dir = Path(scratch)
        multihost.share_run_state(run_dir)
        config = RunConfig.load(run_dir / artifacts.CONFIG_FILE)
        _train(config, run_dir, resume, None, verbose)


def _train_beside(
    config: RunConfig, run_dir: Path, output_model: str | None, verbose: int | str
) -> TrainingResult:
    """--overwrite of a run: train in a staging folder inside it and swap the new run in only
    once it is complete, so a run that fails leaves the old one as it was."""
    staging = artifacts.staging_dir(run_dir)
    try:
        config.save(staging / artifacts.CONFIG_FILE)
        result = _train(config, staging, False, output_model, verbose)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    artifacts.swap_in(staging, run_dir)

    def moved(path: Path) -> Path:
        return run_dir / path.relative_to(staging) if path.is_relative_to(staging) else path

    return dataclasses.replace(result, run_dir=run_dir, model_path=moved(result.model_path),
                               written=[moved(p) for p in result.written])  # fmt: skip


def _train(
    config: RunConfig, run_dir: Path, resume: bool, output_model: str | None, verbose: int | str
) -> TrainingResult | None:
    """Data, model, phases, card and files of a run whose directory is ready (with several
    processes, the others than 0 stop after the phases: None)."""
    cluster = multihost.current()
    if cluster is not None and cluster.is_writer:
        multihost.share_run_state(run_dir)  # the peers receive it in _train_as_peer
    strategy = make_strategy("none" if cluster else config.train.strategy)
    data, model, augmented = data_and_model(config, run_dir, resume, strategy)
    if config.train.lr_finder and config.train.lr is None:  # --lr auto, not yet found
        sweep = range_test(model, augmented, data, config, run_dir / "training_plots")
        config.train.lr = sweep.suggestion
        config.save(run_dir / artifacts.CONFIG_FILE)  # a resumed run keeps this lr
        log.info("learning rate %.3g, suggested by the range test", sweep.suggestion)
    epochs, phase2_start = fit_phases(model, augmented, data, config, run_dir, strategy, verbose)
    if cluster is not None:
        if not cluster.is_writer:
            return None
        model, data = _alone(model, data, config)
    card = make_card(model, data, config, epochs, phase2_start)
    return write_run(model, card, data, config, run_dir, output_model, phase2_start)


def _alone(model: keras.Model, data: TrainingData, config: RunConfig):
    """Process 0 after training with others: the model on its own devices, and the whole
    validation set (training saw its full global batches only), for the card and the files."""
    d = config.data
    val_ds = make_dataset(data.index.splits["val"], data.index.num_classes, data.image_size,
                          d.batch_size, resize=d.resize)  # fmt: skip
    return multihost.local_copy(model), dataclasses.replace(data, val_ds=val_ds)


def find_lr(config: RunConfig, output_dir: str | Path, steps: int = 100) -> LrSweep:
    """The learning-rate range test alone, on the first phase of the run `config` describes:
    writes split.json, lr_finder.png and lr_finder.json into `output_dir`."""
    check_before_work(config)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data, model, augmented = data_and_model(config, out, False, make_strategy("none"))
    return range_test(model, augmented, data, config, out, steps)


def data_and_model(config: RunConfig, run_dir: Path, resume: bool, strategy):
    """(datasets, classifier, the model fit() trains: the classifier, or a wrapper augmenting
    on the accelerator), seeded, built under `strategy` and the precision policy."""
    keras.utils.set_random_seed(config.data.seed)
    augment_on = resolve_placement(config.train.augment_on, config.augment)
    cpu_augment = config.augment if augment_on == "cpu" else None
    data = prepare_data(config, run_dir, resume, strategy.num_replicas_in_sync, cpu_augment)
    with precision_policy(config.train.mixed_precision), strategy.scope():
        model = build_classifier(config.model, data.index.num_classes, data.image_size)
        augmented = (
            with_augmentation(model, config.augment, config.data.seed)
            if augment_on == "gpu"
            else model
        )
    return data, model, augmented


def range_test(model, augmented, data: TrainingData, config: RunConfig, out: Path,
               steps: int = 100) -> LrSweep:  # fmt: skip
    """Run the range test with the layers the first phase trains; plot it and save its numbers."""
    _prepare_layers(model, plan_phases(config)[0])
    loss = make_loss(config.train, data.index.num_classes)
    sweep = lr_range_test(augmented, data.train_ds, loss, steps, class_weight=data.class_weights)
    plots.lr_finder(sweep.lrs, sweep.losses, smooth(sweep.losses), sweep.suggestion,
                    out / "lr_finder.png")  # fmt: skip
    record = {"suggestion": sweep.suggestion, "lrs": sweep.lrs, "losses": sweep.losses}
    artifacts.write_json(record, out / "lr_finder.json")
    return sweep


def check_before_work(config: RunConfig) -> None:
    """Fail before any image is read on what the dataclasses cannot check alone: the backbone
    name, a local weights file, the data folder and its classes (a flip must not swap two of
    them), ImageNet weights (cached or downloadable) and the face detector."""
    d = config.data
    backbone = get_backbone(config.model.backbone)
    check_weights_file(config.model)
    check_flips(discover(d.data_path, d.val_split, d.seed).class_names, config.augment)
    check_imagenet_weights(config.model, d.image_size or backbone.default_size)
    if d.face_crop:
        make_detector(d.face_detector)
    if multihost.current() is not None:
        _check_multiprocess(config)


def _check_multiprocess(config: RunConfig) -> None:
    """What one process would do over the whole data set is refused with several."""
    if config.data.face_crop:
        raise UserError("with several processes, crop the faces first (gender-cls crop-faces "
                        "SRC DST), then train on DST without --face_crop")  # fmt: skip
    if config.train.lr_finder and config.train.lr is None:
        raise UserError("with several processes, find the learning rate first (gender-cls "
                        "find-lr) and pass it as --lr")  # fmt: skip


MIRROR_PAIRS = {  # classes each flip turns into each other
    "horizontal_flip": ("left", "right"),
    "vertical_flip": ("up", "down"),
}


def check_flips(class_names: list[str], augment: AugmentConfig) -> None:
    """A flip would silently swap the labels of mirror-image classes: refuse it."""
    names = {name.lower() for name in class_names}
    for option, pair in MIRROR_PAIRS.items():
        if getattr(augment, option) and set(pair) <= names:
            kind = option.split("_")[0]
            raise UserError(f"classes {pair[0]!r} and {pair[1]!r} swap under a {kind} flip, "
                            f"which would mislabel the flipped images; pass --no-{option}")  # fmt: skip


def prepare_data(
    config: RunConfig, run_dir: Path, resume: bool, replicas: int, augment: AugmentConfig | None
) -> TrainingData:
    """Index and check the images; the training (augmented by `augment` in tf.data) and
    validation datasets."""
    d = config.data
    index = _load_index(config, run_dir, resume)
    log.info("data: %s\n%s", d.data_path, index.summary())
    image_size = d.image_size or get_backbone(config.model.backbone).default_size
    if d.face_crop:
        _crop_faces(index, config, run_dir, image_size)
    cluster = multihost.current()
    shard = (cluster.process_id, cluster.num_processes) if cluster else None
    batch_size = d.batch_size * (cluster.num_processes if cluster else replicas)  # global
    if cluster:
        log.info("batch: %d per process, %d in all", d.batch_size, batch_size)
    val_ds = make_dataset(index.splits["val"], index.num_classes, image_size, batch_size,
                          resize=d.resize, cache=d.cache, shard=shard)  # fmt: skip
    weights = None
    if d.class_weighted:
        weights = class_weights(index.splits["train"].labels, index.num_classes)
        log.info(
            "class weights: %s", {index.class_names[k]: round(v, 3) for k, v in weights.items()}
        )
    train_ds = make_dataset(
        index.splits["train"], index.num_classes, image_size, batch_size, training=True,
        augment=augment, oversample=d.oversample, resize=d.resize, cache=d.cache,
        seed=d.seed, shard=shard,
    )  # fmt: skip
    if config.train.mixup:
        train_ds = mixup(train_ds, config.train.mixup, d.seed)
    return TrainingData(index, image_size, batch_size, train_ds, val_ds, weights)


def face_crop(config: RunConfig) -> FaceCrop | None:
    """The run's face crop, its template "auto" resolved to the backbone's."""
    return config.data.face(get_backbone(config.model.backbone).face_template)


def _crop_faces(index: DatasetIndex, config: RunConfig, run_dir: Path, image_size: int) -> None:
    """Replace the train and val images by their aligned face crops (cached: detected once)."""
    d = config.data
    cache = CropCache(d.face_cache or run_dir / "face_cache", face_crop(config), image_size)
    not_found = []
    for name in ("train", "val"):
        index.splits[name], report = crop_split(index.splits[name], cache, d.face_fallback)
        log.info("face crop, %s: %s", name, report.summary())
        not_found += report.no_face
    if not_found:
        write_text(run_dir / artifacts.NO_FACE_FILE, "\n".join(not_found) + "\n")


def fit_phases(
    model: keras.Model,
    augmented: keras.Model,
    data: TrainingData,
    config: RunConfig,
    run_dir: Path,
    strategy,
    verbose: int | str,
) -> tuple[int, int | None]:
    """Fit every planned phase, skipping those a resumed run finished; returns (epochs trained,
    the epoch phase 2 started at or None)."""
    state_path = run_dir / artifacts.STATE_FILE
    state = artifacts.read_json(state_path) if state_path.is_file() else {"phases": {}}
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
        _prepare_layers(model, phase)
        start = time.perf_counter()
        fit_model, fit_train, fit_val = augmented, data.train_ds, data.val_ds
        # The feature cache predicts the whole split in one process: not with several.
        alone = multihost.current() is None
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
        with replacing(run_dir / weights_file) as temp:
            model.save_weights(temp)
        state["phases"][phase.name] = {"end_epoch": end_epoch, "weights": weights_file}
        artifacts.write_json(state, state_path)
        _log_phase(phase, history.history, epoch, end_epoch, time.perf_counter() - start)
        epoch = end_epoch
    return epoch, phase2_start


def _steps_per_epoch(dataset, data: TrainingData) -> int:
    """Batches per epoch: the dataset's cardinality, else counted from the training split."""
    steps = int(dataset.cardinality())
    return steps if steps > 0 else math.ceil(len(data.index.splits["train"]) / data.batch_size)


def make_card(
    model: keras.Model, data: TrainingData, config: RunConfig, epochs: int, phase2_start: int | None
) -> artifacts.ModelCard:
    """The model card of a trained model, with its validation metrics and tuned threshold."""
    index = data.index
    report = validation_report(model, index, data.val_ds, config.train)
    return artifacts.ModelCard(
        class_names=index.class_names,
        image_size=data.image_size,
        backbone=get_backbone(config.model.backbone).name,
        input_scale="raw",
        resize=config.data.resize,
        threshold=report["threshold"],
        threshold_source=report["threshold_source"],
        validation=report,
        epochs_trained=epochs,
        phase2_start_epoch=phase2_start,
        data={"root": index.root, "layout": index.layout, "split_file": artifacts.SPLIT_FILE},
        config=config,
        versions=artifacts.package_versions(),
        created=artifacts.now(),
        face_crop=face_crop(config),
        temperature=report["temperature"],
    )


def write_run(
    model: keras.Model,
    card: artifacts.ModelCard,
    data: TrainingData,
    config: RunConfig,
    run_dir: Path,
    output_model: str | None,
    phase2_start: int | None,
) -> TrainingResult:
    """Save the model and its card (and a copy at `output_model`), export them, and plot the
    training curves."""
    if config.train.mixed_precision:  # save a float32 model: it runs anywhere, CPUs included
        model = copy_classifier(model, config.model, data.index.num_classes, data.image_size)
    model_path, card_path = artifacts.save_artifact(model, card, run_dir / artifacts.MODEL_FILE)
    written = [model_path, card_path]
    if output_model:
        written += list(artifacts.save_artifact(model, card, output_model))
    if config.train.export != "none":
        saved = [model_path, *([Path(output_model)] if output_model else [])]
        written += export_saved(saved, config.train.export, run_dir, card)
        card = artifacts.ModelCard.load(card_path)  # now with its exports
    history = read_history(run_dir / artifacts.HISTORY_FILE)
    for metric in ("accuracy", "loss"):
        path = run_dir / "training_plots" / f"{metric}_curve.png"
        written.append(plots.training_curve(history, metric, path, phase2_start))
    written.append(run_dir / artifacts.HISTORY_FILE)
    return TrainingResult(run_dir, model_path, card, history, phase2_start, written)


def kept_epoch(history: dict, monitor: str) -> int | None:
    """Index of the epoch EarlyStopping restores: the first best value of `monitor`."""
    values = np.asarray(history.get(monitor, []), np.float64)
    if values.size == 0 or np.all(np.isnan(values)):
        return None
    return int(np.nanargmax(values) if monitor == "val_accuracy" else np.nanargmin(values))


def export_saved(
    paths: list[Path], fmt: str, run_dir: Path, card: artifacts.ModelCard
) -> list[Path]:
    """Export each saved model (checked against Keras on training images); a failed export is
    a warning, never a lost model."""
    from gender_cls.export import export_model, sample_images

    samples = sample_images(run_dir, card, 32)
    written = []
    for path in paths:
        try:
            record = export_model(path, fmt, samples=samples)
        except Exception as error:  # converters raise anything; the Keras model is saved anyway
            log.warning("%s: %s export failed (%s); the Keras model is saved, so try "
                        "gender-cls export --model_path %s later", path, fmt,
                        first_line(error, 200), path)  # fmt: skip
            continue
        written.append(path.with_name(record["file"]))
        log.info("exported %s; largest output difference vs Keras %.1e", written[-1].name,
                 record.get("max_abs_diff_vs_keras", float("nan")))  # fmt: skip
    return written


def _log_phase(phase: Phase, history: dict, first: int, end: int, seconds: float) -> None:
    """One line per phase: its epochs and time, and the epoch whose weights were kept."""
    line = f"phase {phase.name}: epochs {first + 1}-{end} in {seconds:.0f}s, lr {phase.lr:g}"
    best = kept_epoch(history, phase.monitor)
    if best is not None:
        metrics = ", ".join(f"{name} {history[name][best]:.4f}"
                            for name in ("val_loss", "val_accuracy") if name in history)  # fmt: skip
        line += f"; kept epoch {first + best + 1} (best {phase.monitor}): {metrics}"
    log.info(line)
