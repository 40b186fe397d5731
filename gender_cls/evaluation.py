"""Evaluate a model on a labelled folder: predictions, metrics, threshold, and the files to write."""

from __future__ import annotations

import csv
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cls import artifacts, plots
from gender_cls.data import check_readable, labelled_folder
from gender_cls.errors import UserError
from gender_cls.inference import Predictor
from gender_cls.metrics import binary_metrics, compute_metrics, report_text
from gender_cls.thresholds import threshold_sweep, tune_threshold

log = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    """Everything an evaluation found; `write_outputs` turns it into files."""

    class_names: list[str]
    paths: list[str]
    y_true: np.ndarray
    probabilities: np.ndarray  # [N, classes]
    y_pred: np.ndarray
    threshold: float | None
    threshold_source: str
    metrics: dict
    report: str
    report_at_half: str | None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def binary(self) -> bool:
        return self.threshold is not None

    def full_report(self) -> str:
        """The decision rule, the classification report, and (binary) the report at 0.5."""
        if self.binary:
            text = f"threshold: {self.threshold:.4f} ({self.threshold_source})\n\n{self.report}"
        else:
            text = f"decision: the most probable class (argmax)\n\n{self.report}"
        if self.report_at_half is not None:
            text += f"\nfor comparison, at threshold 0.5:\n\n{self.report_at_half}"
        return text

    def confidence(self) -> np.ndarray:
        """Probability of the predicted class for every image."""
        return self.probabilities[np.arange(len(self.y_pred)), self.y_pred]

    def misclassified(self) -> np.ndarray:
        """Indices of wrong predictions, most confident first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        return wrong[np.argsort(-self.confidence()[wrong], kind="stable")]


def _labelled_predictions(predictor: Predictor, folder: str | Path, verbose: int):
    index = check_readable(labelled_folder(folder, predictor.class_names))
    split = index.splits["test"]
    log.info("predicting %d images in %s", len(split), folder)
    probabilities = predictor.predict_files(split.paths, verbose=verbose)
    return index, split, np.asarray(split.labels), probabilities


def evaluate(
    model_path: str | Path | artifacts.ModelRef,
    data_dir: str | Path,
    *,
    classes: list[str] | None = None,
    input_scale: str | None = None,
    threshold: float | None = None,
    tune_on: str | Path | None = None,
    threshold_metric: str | None = None,
    batch_size: int = 32,
    backend: str = "auto",
    mixed_precision: bool = False,
    jit: bool | None = None,
    verbose: int = 0,
) -> EvaluationResult:
    """Predict every image of a labelled folder and measure the model on it."""
    model = artifacts.resolve_model(model_path)
    if classes is None and model.card is None:
        classes = labelled_folder(data_dir).class_names  # a bare model: the folders' classes
    predictor = Predictor(
        model, classes=classes, input_scale=input_scale, threshold=threshold,
        batch_size=batch_size, backend=backend, mixed_precision=mixed_precision, jit=jit,
    )  # fmt: skip
    if tune_on is not None and predictor.binary:
        _tune(predictor, tune_on, data_dir, threshold_metric, verbose)
    index, split, y_true, probabilities = _labelled_predictions(predictor, data_dir, verbose)
    y_pred = predictor.decide(probabilities)
    names = predictor.class_names
    metrics = compute_metrics(y_true, probabilities, y_pred, names)
    metrics.update(
        threshold=predictor.threshold,
        threshold_source=predictor.threshold_source,
        model_path=str(predictor.model_file),
        data_path=str(data_dir),
        images=len(split),
        skipped_unreadable=len(index.skipped),
    )
    at_half = None
    if predictor.binary:
        metrics["at_0.5"] = binary_metrics(y_true, probabilities[:, 1], 0.5)
        at_half = report_text(y_true, predictor.decide(probabilities, 0.5), names)
    return EvaluationResult(
        names, split.paths, y_true, probabilities, y_pred, predictor.threshold,
        predictor.threshold_source, metrics, report_text(y_true, y_pred, names), at_half,
        index.skipped, predictor.assumptions,
    )  # fmt: skip


def _tune(predictor: Predictor, tune_on, data_dir, metric: str | None, verbose: int) -> None:
    """Re-tune the predictor's threshold on a labelled folder that is not the test folder."""
    if Path(tune_on).resolve() == Path(data_dir).resolve():
        raise UserError(f"{tune_on}: --tune_on must not be the test folder; use a validation set")
    if metric is None:
        card = predictor.model_ref.card
        config = card.config if card else None
        metric = config.train.threshold_metric if config else "f1"
    _, _, y_true, probabilities = _labelled_predictions(predictor, tune_on, verbose)
    predictor.threshold = tune_threshold(y_true, probabilities[:, 1], metric)
    predictor.threshold_source = f"tuned on {tune_on} to maximise {metric}"
    log.info("threshold %.4f %s", predictor.threshold, predictor.threshold_source)


def write_outputs(
    result: EvaluationResult, out_dir: str | Path, max_misclassified: int | None = None
) -> list[Path]:
    """Write the report, metrics, predictions, plots and misclassified images; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = out / "classification_report.txt"
    report.write_text(result.full_report())
    written = [report]
    artifacts.write_json(result.metrics, out / "metrics.json")
    written.append(out / "metrics.json")
    written.append(_write_predictions(result, out / "predictions.csv"))
    cm = np.asarray(result.metrics["confusion_matrix"])
    written.append(plots.confusion_matrix(cm, result.class_names, out / "confusion_matrix.png"))
    if result.binary:
        y, p = result.y_true, result.probabilities[:, 1]
        written.append(plots.roc_curve(y, p, out / "roc_curve.png"))
        written.append(plots.pr_curve(y, p, out / "pr_curve.png"))
        sweep = threshold_sweep(y, p) if len(np.unique(y)) == 2 else None
        if sweep is not None:
            path = out / "threshold_curve.png"
            written.append(plots.threshold_curve(sweep, result.threshold, path))
    wrong = result.misclassified()[:max_misclassified]
    written.append(_copy_misclassified(result, wrong, out / "misclassified"))
    if len(wrong):
        written.append(_contact_sheet(result, wrong[:36], out / "misclassified.png"))
    return written


def _write_predictions(result: EvaluationResult, path: Path) -> Path:
    names, confidence = result.class_names, result.confidence()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "true_label", "predicted_label", "confidence"]
                        + [f"p_{n}" for n in names])  # fmt: skip
        for i, image in enumerate(result.paths):
            row = [image, names[result.y_true[i]], names[result.y_pred[i]]]
            row.append(f"{confidence[i]:.6f}")
            writer.writerow(row + [f"{v:.6f}" for v in result.probabilities[i]])
    return path


def _copy_misclassified(result: EvaluationResult, indices: np.ndarray, folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    names, confidence = result.class_names, result.confidence()
    for i in indices:
        source = Path(result.paths[i])
        true, pred = names[result.y_true[i]], names[result.y_pred[i]]
        target = folder / f"{true}_as_{pred}_{confidence[i]:.3f}_{source.name}"
        if target.exists():  # same name in two class folders
            target = target.with_name(f"{target.stem}_{i}{target.suffix}")
        shutil.copy2(source, target)
    return folder


def _contact_sheet(result: EvaluationResult, indices: np.ndarray, path: Path) -> Path:
    from gender_cls.images import load_image

    names, confidence = result.class_names, result.confidence()
    images = [load_image(result.paths[i], 128) for i in indices]
    captions = [
        f"{names[result.y_true[i]]} as {names[result.y_pred[i]]} ({confidence[i]:.0%})"
        for i in indices
    ]
    return plots.contact_sheet(images, captions, path, "Most confident mistakes")
