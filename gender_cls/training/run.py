"""Two-phase fine-tuning: frozen base then the last layers unfrozen, callbacks, resumable runs."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from gender_cls import plots
from gender_cls.artifacts.card import ModelCard, now, package_versions, save_artifact
from gender_cls.artifacts.run_folder import (
    CONFIG_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    SPLIT_FILE,
    discard_run,
    prepare_run_dir,
    run_entries,
    run_lock,
    staging_dir,
    swap_in,
)
from gender_cls.config import (
    RunConfig,
    TrainConfig,
)
from gender_cls.data.index import (
    DatasetIndex,
)
from gender_cls.data.pipeline import make_dataset
from gender_cls.errors import first_line
from gender_cls.metrics import classification as metrics
from gender_cls.models.backbones import get_backbone
from gender_cls.models.classifier import (
    copy_classifier,
)
from gender_cls.predict.export import export_model, sample_images
from gender_cls.training import multihost
from gender_cls.training.callbacks import (
    read_history,
)
from gender_cls.training.checks import check_before_work
from gender_cls.training.inputs import TrainingData, data_and_model, face_crop
from gender_cls.training.lr_finder import range_test
from gender_cls.training.phases import fit_phases
from gender_cls.training.strategy import make_strategy

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    run_dir: Path
    model_path: Path
    card: ModelCard
    history: dict[str, list[float]]
    phase2_start: int | None
    written: list[Path] = field(default_factory=list)


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
    cluster: multihost.Cluster | None = None,
) -> TrainingResult | None:
    """Train a classifier as `config` says and write the run directory; returns what it wrote.
    With several processes (`cluster`, joined by multihost.join), process 0 does this and the
    others only train alongside it (returning None)."""
    if cluster is not None and not cluster.is_writer:
        if not resume:
            check_before_work(config, cluster)
        return _train_as_peer(resume, verbose, cluster)
    if resume:
        run_dir = prepare_run_dir(config.train.output_dir, resume=True)
        with run_lock(run_dir):
            config = RunConfig.load(run_dir / CONFIG_FILE)
            check_before_work(config)
            return _train(config, run_dir, True, output_model, verbose, cluster)
    check_before_work(config)
    run_dir = Path(config.train.output_dir)
    created = not run_dir.exists()
    with run_lock(run_dir):
        if overwrite and run_entries(run_dir):
            return _train_beside(config, run_dir, output_model, verbose, cluster)
        prepare_run_dir(run_dir, overwrite)
        try:
            config.save(run_dir / CONFIG_FILE)
            return _train(config, run_dir, False, output_model, verbose, cluster)
        except BaseException:
            if not (run_dir / HISTORY_FILE).is_file():  # failed before its 1st epoch
                discard_run(run_dir, created)
            raise


def _train_as_peer(resume: bool, verbose: int | str, cluster: multihost.Cluster) -> None:
    """A process other than 0: train in a scratch folder that starts as a copy of process 0's
    run state (its config, split, finished phases and backups), then discard it."""
    with tempfile.TemporaryDirectory(prefix="gender_cls-peer-") as scratch:
        run_dir = Path(scratch)
        multihost.share_run_state(run_dir, cluster)
        config = RunConfig.load(run_dir / CONFIG_FILE)
        _train(config, run_dir, resume, None, verbose, cluster)


def _train_beside(
    config: RunConfig, run_dir: Path, output_model: str | None, verbose: int | str, cluster
) -> TrainingResult:
    """--overwrite of a run: train in a staging folder inside it and swap the new run in only
    once it is complete, so a run that fails leaves the old one as it was."""
    staging = staging_dir(run_dir)
    try:
        config.save(staging / CONFIG_FILE)
        result = _train(config, staging, False, output_model, verbose, cluster)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_in(staging, run_dir)

    def moved(path: Path) -> Path:
        return run_dir / path.relative_to(staging) if path.is_relative_to(staging) else path

    return dataclasses.replace(result, run_dir=run_dir, model_path=moved(result.model_path),
                               written=[moved(p) for p in result.written])  # fmt: skip


def _train(
    config: RunConfig,
    run_dir: Path,
    resume: bool,
    output_model: str | None,
    verbose: int | str,
    cluster: multihost.Cluster | None,
) -> TrainingResult | None:
    """Data, model, phases, card and files of a run whose directory is ready (with several
    processes, the others than 0 stop after the phases: None)."""
    if cluster is not None and cluster.is_writer:
        multihost.share_run_state(run_dir, cluster)  # the peers receive it in _train_as_peer
    strategy = make_strategy("none" if cluster else config.train.strategy)
    data, model, augmented = data_and_model(config, run_dir, resume, strategy, cluster)
    if config.train.lr_finder and config.train.lr is None:  # --lr auto, not yet found
        sweep = range_test(model, augmented, data, config, run_dir / "training_plots")
        config.train.lr = sweep.suggestion
        config.save(run_dir / CONFIG_FILE)  # a resumed run keeps this lr
        log.info("learning rate %.3g, suggested by the range test", sweep.suggestion)
    epochs, phase2_start = fit_phases(
        model, augmented, data, config, run_dir, strategy, verbose, alone=cluster is None
    )
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


def make_card(
    model: keras.Model, data: TrainingData, config: RunConfig, epochs: int, phase2_start: int | None
) -> ModelCard:
    """The model card of a trained model, with its validation metrics and tuned threshold."""
    index = data.index
    report = validation_report(model, index, data.val_ds, config.train)
    return ModelCard(
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
        data={"root": index.root, "layout": index.layout, "split_file": SPLIT_FILE},
        config=config,
        versions=package_versions(),
        created=now(),
        face_crop=face_crop(config),
        temperature=report["temperature"],
    )


def write_run(
    model: keras.Model,
    card: ModelCard,
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
    model_path, card_path = save_artifact(model, card, run_dir / MODEL_FILE)
    written = [model_path, card_path]
    if output_model:
        written += list(save_artifact(model, card, output_model))
    if config.train.export != "none":
        saved = [model_path, *([Path(output_model)] if output_model else [])]
        written += export_saved(saved, config.train.export, run_dir, card)
        card = ModelCard.load(card_path)  # now with its exports
    history = read_history(run_dir / HISTORY_FILE)
    for metric in ("accuracy", "loss"):
        path = run_dir / "training_plots" / f"{metric}_curve.png"
        written.append(plots.training_curve(history, metric, path, phase2_start))
    written.append(run_dir / HISTORY_FILE)
    return TrainingResult(run_dir, model_path, card, history, phase2_start, written)


def export_saved(paths: list[Path], fmt: str, run_dir: Path, card: ModelCard) -> list[Path]:
    """Export each saved model (checked against Keras on training images); a failed export is
    a warning, never a lost model."""
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
