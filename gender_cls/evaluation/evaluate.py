"""Evaluate a model on a labelled folder: predictions, metrics and threshold (`outputs` writes
them)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gender_cls.artifacts.card import ModelRef, resolve_model
from gender_cls.artifacts.run_folder import SPLIT_FILE
from gender_cls.data.images import ImageReadError, read_image
from gender_cls.data.index import DatasetIndex, check_readable, labelled_folder, run_split
from gender_cls.errors import UserError
from gender_cls.evaluation.fairness import group_table, load_groups
from gender_cls.evaluation.result import EvaluationResult
from gender_cls.faces.cache import CropCache, CropReport, crop_split, default_cache_dir
from gender_cls.metrics.calibration import calibration_metrics
from gender_cls.metrics.classification import binary_metrics, compute_metrics, report_text
from gender_cls.metrics.thresholds import tune_threshold
from gender_cls.predict.predictor import Predictor

log = logging.getLogger(__name__)
# (predictor, its options, paths) -> ([N, classes] probabilities, the same without TTA or None)
Scorer = Callable[[Predictor, dict, list[str]], tuple[np.ndarray, np.ndarray | None]]


@dataclass
class LabelledPredictions:
    """A labelled folder predicted: its original paths, labels and probabilities, and what the
    face crop found (None without one)."""

    index: DatasetIndex
    paths: list[str]
    y_true: np.ndarray
    probabilities: np.ndarray
    faces: CropReport | None
    without_tta: np.ndarray | None = None  # with test-time augmentation: plain probabilities


def _labelled_predictions(
    predictor: Predictor,
    index: DatasetIndex,
    verbose: int,
    faces: CropCache | None,
    fallback: str,
    remote=None,
) -> LabelledPredictions:
    """Predict the "test" split of `index`; `remote` (paths -> (probabilities, without TTA))
    predicts elsewhere, on Ray. Unreadable images are dropped first, and one that breaks later
    (a NaN row) is dropped then, with its reason, so the figures are those of the rest."""
    index = check_readable(index)
    split, report = index.splits["test"], None
    if faces is not None:
        split, report = crop_split(split, faces, fallback)
        log.info("face crop: %s", report.summary())
    log.info("predicting %d images from %s", len(split), index.root)
    plain = None
    if remote is not None:
        probabilities, plain = remote(split.paths)
    elif predictor.tta > 1:  # each chunk decoded once for both: with and without test-time views
        probabilities, plain = predictor.predict_chunks(split.paths, (predictor.tta, 1))
    else:
        probabilities = predictor.predict_files(split.paths, verbose=verbose)
    paths, labels = report.sources if report else split.paths, np.asarray(split.labels)
    read = ~np.isnan(probabilities).any(axis=1)
    if not read.all():
        broken = [(path, _reason(path)) for path, ok in zip(paths, read, strict=True) if not ok]
        log.warning("%d file(s) could not be read when predicted; left out: %s", len(broken),
                    "; ".join(f"{p} ({r})" for p, r in broken[:3]))  # fmt: skip
        index.skipped.extend(broken)
        if not read.any():
            raise UserError(f"{index.root}: no image could be read when predicted")
        paths = [path for path, ok in zip(paths, read, strict=True) if ok]
        labels, probabilities = labels[read], probabilities[read]
        plain = None if plain is None else plain[read]
        if report is not None:
            report.sources = paths
    return LabelledPredictions(index, paths, labels, probabilities, report, plain)


def _reason(path: str) -> str:
    """Why a file failed when it was predicted, as far as reading it again tells."""
    try:
        read_image(path, size_hint=32)
    except ImageReadError as error:
        return error.reason
    return "could not be read when it was predicted"


def evaluate(
    model_path: str | Path | ModelRef,
    data_dir: str | Path | None = None,
    *,
    split: str | None = None,
    tune_on: str | Path | None = None,
    threshold_metric: str | None = None,
    face_fallback: str = "full",
    face_cache: str | Path | None = None,
    groups: str | None = None,
    verbose: int = 0,
    scorer: Scorer | None = None,
    **predictor_options,
) -> EvaluationResult:
    """Predict every image of a labelled folder (or of the run's own `split`, "val" or "test",
    from its split.json) and measure the model on it; a model trained with a face crop is
    evaluated on aligned faces unless `face_crop` is False. `groups` ("utkface" or a CSV file)
    adds per-group metrics. `predictor_options` go to the Predictor (classes, threshold,
    backend, input_scale...). `scorer` predicts elsewhere, for example
    `ray_engine.scorer(address)` on Ray Data; by default the predictor scores here."""
    if groups not in (None, "utkface") and not Path(groups).is_file():
        raise UserError(f"{groups}: groups file not found; pass a CSV (path, attributes...) or "
                        "utkface")  # fmt: skip
    if (data_dir is None) == (split is None):
        raise UserError("pass either --data_path (a labelled folder) or --split val|test (the "
                        "run's own split), not both")  # fmt: skip
    model = resolve_model(model_path)
    if split is not None:
        split_file = model.file.parent / SPLIT_FILE
        source, data_dir = run_split(split_file, split), f"{split_file}:{split}"
    else:
        source = labelled_folder(data_dir)
    if predictor_options.get("classes") is None and model.card is None:
        predictor_options["classes"] = source.class_names  # a bare model: the folders' classes
    predictor = Predictor(model, **predictor_options)
    remote = None if scorer is None else functools.partial(scorer, predictor, predictor_options)
    faces = None
    if predictor.face_crop is not None:
        folder = face_cache or default_cache_dir()
        faces = CropCache(folder, predictor.face_crop, predictor.image_size)
    if tune_on is not None and predictor.binary:
        _tune(predictor, tune_on, data_dir, threshold_metric, verbose, faces, face_fallback,
              remote)  # fmt: skip
    if split is None:  # labels in the model's class order
        source = labelled_folder(data_dir, predictor.class_names)
    elif source.class_names != predictor.class_names:
        raise UserError(f"{data_dir}: classes {source.class_names} differ from the model's "
                        f"{predictor.class_names}; pass --data_path")  # fmt: skip
    found = _labelled_predictions(predictor, source, verbose, faces, face_fallback, remote)
    y_true, probabilities = found.y_true, found.probabilities
    y_pred = predictor.decide(probabilities)
    names = predictor.class_names
    metrics = compute_metrics(y_true, probabilities, y_pred, names)
    metrics.update(
        threshold=predictor.threshold,
        threshold_source=predictor.threshold_source,
        model_path=str(predictor.model_file),
        data_path=str(data_dir),
        images=len(found.paths),
        skipped_unreadable=len(found.index.skipped),
    )
    metrics.update(calibration_metrics(y_true, probabilities), temperature=predictor.temperature)
    if found.without_tta is not None:
        plain = compute_metrics(
            y_true, found.without_tta, predictor.decide(found.without_tta), names
        )
        scalars = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc")
        metrics["tta"] = {"views": predictor.tta, "without_tta": {k: plain[k] for k in scalars}}
    if groups is not None:
        per_group = load_groups(groups, found.paths)
        metrics["groups"] = group_table(y_true, y_pred, names, per_group)
    if found.faces is not None:
        metrics["face_crop"] = {**asdict(predictor.face_crop), **found.faces.to_dict()}
    at_half = None
    if predictor.binary:
        metrics["at_0.5"] = binary_metrics(y_true, probabilities[:, 1], 0.5)
        at_half = report_text(y_true, predictor.decide(probabilities, 0.5), names)
    return EvaluationResult(
        names, found.paths, y_true, probabilities, y_pred, predictor.threshold,
        predictor.threshold_source, metrics, report_text(y_true, y_pred, names), at_half,
        found.index.skipped, predictor.assumptions, found.faces, predictor,
    )  # fmt: skip


def _tune(predictor: Predictor, tune_on, data_dir, metric, verbose, faces, fallback,
          remote=None) -> None:  # fmt: skip
    """Re-tune the predictor's threshold on a labelled folder that is not the test folder."""
    if Path(tune_on).resolve() == Path(data_dir).resolve():
        raise UserError(f"{tune_on}: --tune_on must not be the test folder; use a validation set")
    if metric is None:
        card = predictor.model_ref.card
        config = card.config if card else None
        metric = config.train.threshold_metric if config else "f1"
    index = labelled_folder(tune_on, predictor.class_names)
    found = _labelled_predictions(predictor, index, verbose, faces, fallback, remote)
    predictor.threshold = tune_threshold(found.y_true, found.probabilities[:, 1], metric)
    predictor.threshold_source = f"tuned on {tune_on} to maximise {metric}"
    log.info("threshold %.4f %s", predictor.threshold, predictor.threshold_source)
