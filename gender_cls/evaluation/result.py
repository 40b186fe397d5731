"""An evaluation's result and the files it writes: metrics.json, the reports, predictions.csv,
plots, misclassified images, Grad-CAM pictures and report.html."""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cls import plots
from gender_cls.artifacts.run_folder import NO_FACE_FILE, write_json
from gender_cls.atomic import replacing, safe_name, write_text
from gender_cls.data.images import load_image
from gender_cls.evaluation.fairness import format_report
from gender_cls.evaluation.report import write_report
from gender_cls.faces.cache import CropReport
from gender_cls.metrics.calibration import reliability_bins
from gender_cls.metrics.thresholds import threshold_sweep
from gender_cls.predict.gradcam import write_gradcams
from gender_cls.predict.predictor import Predictor


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
    faces: CropReport | None = None  # what the face crop found, when there was one
    predictor: Predictor | None = None  # the model as it predicted (for Grad-CAM pictures)

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
        if self.faces is not None:
            text += f"\nface crop: {self.faces.summary()}"
            if self.faces.fallback == "skip" and self.faces.no_face:
                text += " and not in the figures above (no face)"
            text += "\n"
        return text

    def write(self, out_dir: str | Path, max_misclassified: int | None = None,
              gradcam: int = 0) -> list[Path]:  # fmt: skip
        """The files test_script.py writes (write_outputs); returns them."""
        return write_outputs(self, out_dir, max_misclassified, gradcam)

    def confidence(self) -> np.ndarray:
        """Probability of the predicted class for every image."""
        return self.probabilities[np.arange(len(self.y_pred)), self.y_pred]

    def misclassified(self) -> np.ndarray:
        """Indices of wrong predictions, most confident first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        return wrong[np.argsort(-self.confidence()[wrong], kind="stable")]


def write_outputs(
    result: EvaluationResult,
    out_dir: str | Path,
    max_misclassified: int | None = None,
    gradcam: int = 0,
) -> list[Path]:
    """Write the report, metrics, predictions, plots and misclassified images (with `gradcam`,
    the Grad-CAM of that many most confident mistakes); returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = out / "classification_report.txt"
    write_text(report, result.full_report())
    written = [report]
    write_json(result.metrics, out / "metrics.json")
    written.append(out / "metrics.json")
    written.append(_write_predictions(result, out / "predictions.csv"))
    if result.faces is not None and result.faces.no_face:
        no_face = out / NO_FACE_FILE
        write_text(no_face, "\n".join(result.faces.no_face) + "\n")
        written.append(no_face)
    if "groups" in result.metrics:
        written += _write_groups(result, out)
    table = reliability_bins(result.y_true, result.probabilities)
    path = out / "reliability_diagram.png"
    written.append(plots.reliability_diagram(table, result.metrics["ece"], path))
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
    if gradcam and len(wrong):
        written.append(_gradcams(result, wrong[:gradcam], out / "gradcam"))
    if len(wrong):
        written.append(_contact_sheet(result, wrong[:36], out / "misclassified.png"))
    written.append(write_report(result, out))  # last: it embeds the plots above
    return written


def _write_groups(result: EvaluationResult, out: Path) -> list[Path]:
    """fairness_report.txt and one bar chart per attribute."""
    table = result.metrics["groups"]
    report = out / "fairness_report.txt"
    write_text(report, format_report(table, result.class_names))
    charts = [
        plots.group_bars(attribute, entry, result.class_names, out / f"groups_{attribute}.png")
        for attribute, entry in table.items()
    ]
    return [report, *charts]


def _write_predictions(result: EvaluationResult, path: Path) -> Path:
    names, confidence = result.class_names, result.confidence()
    with (
        replacing(path) as temp,
        temp.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle,
    ):
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
        name = f"{true}_as_{pred}_{confidence[i]:.3f}_{source.name}"
        target = folder / safe_name(name)
        if target.exists():  # same name in two class folders
            target = target.with_name(f"{target.stem}_{i}{target.suffix}")
        shutil.copy2(source, target)
    return folder


def _contact_sheet(result: EvaluationResult, indices: np.ndarray, path: Path) -> Path:

    names, confidence = result.class_names, result.confidence()
    images = [load_image(result.paths[i], 128) for i in indices]
    captions = [
        f"{names[result.y_true[i]]} as {names[result.y_pred[i]]} ({confidence[i]:.0%})"
        for i in indices
    ]
    return plots.contact_sheet(images, captions, path, "Most confident mistakes")


def _gradcams(result: EvaluationResult, indices: np.ndarray, folder: Path) -> Path:
    """Grad-CAM pictures of the given predictions, on the images as the model saw them."""

    if folder.exists():
        shutil.rmtree(folder)
    paths = [result.paths[i] for i in indices]
    images, _, _ = result.predictor.load_inputs(paths, crop=True)
    names, confidence = result.class_names, result.confidence()
    captions = [f"{names[result.y_true[i]]} as {names[result.y_pred[i]]} {confidence[i]:.0%}"
                for i in indices]  # fmt: skip
    files = [safe_name(f"{rank:03d}_{Path(p).stem}.png") for rank, p in enumerate(paths, 1)]
    write_gradcams(result.predictor, images, captions, files, folder)
    return folder
