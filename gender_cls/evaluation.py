"""Evaluate a model on a labelled folder: predictions, metrics, threshold, and the files to write."""

from __future__ import annotations

import csv
import functools
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gender_cls import artifacts, plots
from gender_cls.atomic import replacing, safe_name, write_text
from gender_cls.calibration import calibration_metrics, reliability_bins
from gender_cls.data import DatasetIndex, check_readable, labelled_folder, run_split
from gender_cls.errors import UserError
from gender_cls.faces import CropCache, CropReport, crop_split, default_cache_dir
from gender_cls.fairness import format_report, group_table, load_groups
from gender_cls.inference import Predictor, chunks
from gender_cls.metrics import binary_metrics, compute_metrics, report_text
from gender_cls.report import write_report
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

    def confidence(self) -> np.ndarray:
        """Probability of the predicted class for every image."""
        return self.probabilities[np.arange(len(self.y_pred)), self.y_pred]

    def misclassified(self) -> np.ndarray:
        """Indices of wrong predictions, most confident first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        return wrong[np.argsort(-self.confidence()[wrong], kind="stable")]


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
    """Predict the "test" split of `index` (its unreadable images dropped first); `remote`
    (paths -> (probabilities, without TTA)) predicts elsewhere, on Ray."""
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
        pairs = [(predictor.predict_arrays(images), predictor.predict_arrays(images, 1))
                 for images in (predictor.load_inputs(c)[0] for c in chunks(split.paths))]  # fmt: skip
        probabilities = np.concatenate([with_views for with_views, _ in pairs])
        plain = np.concatenate([without for _, without in pairs])
    else:
        probabilities = predictor.predict_files(split.paths, verbose=verbose)
    paths = report.sources if report else split.paths
    return LabelledPredictions(index, paths, np.asarray(split.labels), probabilities, report, plain)


def evaluate(
    model_path: str | Path | artifacts.ModelRef,
    data_dir: str | Path | None = None,
    *,
    split: str | None = None,
    tune_on: str | Path | None = None,
    threshold_metric: str | None = None,
    face_fallback: str = "full",
    face_cache: str | Path | None = None,
    groups: str | None = None,
    verbose: int = 0,
    engine: str = "local",
    ray_address: str | None = None,
    **predictor_options,
) -> EvaluationResult:
    """Predict every image of a labelled folder (or of the run's own `split`, "val" or "test",
    from its split.json) and measure the model on it; a model trained with a face crop is
    evaluated on aligned faces unless `face_crop` is False. `groups` ("utkface" or a CSV file)
    adds per-group metrics. `predictor_options` go to the Predictor (classes, threshold,
    backend, input_scale...). `engine` "ray" predicts on Ray Data (ray_engine.py)."""
    if groups not in (None, "utkface") and not Path(groups).is_file():
        raise UserError(f"{groups}: groups file not found; pass a CSV (path, attributes...) or "
                        "utkface")  # fmt: skip
    if (data_dir is None) == (split is None):
        raise UserError("pass either --data_path (a labelled folder) or --split val|test (the "
                        "run's own split), not both")  # fmt: skip
    model = artifacts.resolve_model(model_path)
    if split is not None:
        split_file = model.file.parent / artifacts.SPLIT_FILE
        source, data_dir = run_split(split_file, split), f"{split_file}:{split}"
    else:
        source = labelled_folder(data_dir)
    if predictor_options.get("classes") is None and model.card is None:
        predictor_options["classes"] = source.class_names  # a bare model: the folders' classes
    predictor = Predictor(model, **predictor_options)
    remote = None
    if engine == "ray":
        from gender_cls import ray_engine

        remote = functools.partial(ray_engine.probabilities, model_file=predictor.model_file,
                                   options=predictor_options, num_classes=len(predictor.class_names),
                                   tta=predictor.tta, address=ray_address)  # fmt: skip
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
    artifacts.write_json(result.metrics, out / "metrics.json")
    written.append(out / "metrics.json")
    written.append(_write_predictions(result, out / "predictions.csv"))
    if result.faces is not None and result.faces.no_face:
        no_face = out / artifacts.NO_FACE_FILE
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
    from gender_cls.images import load_image

    names, confidence = result.class_names, result.confidence()
    images = [load_image(result.paths[i], 128) for i in indices]
    captions = [
        f"{names[result.y_true[i]]} as {names[result.y_pred[i]]} ({confidence[i]:.0%})"
        for i in indices
    ]
    return plots.contact_sheet(images, captions, path, "Most confident mistakes")


def _gradcams(result: EvaluationResult, indices: np.ndarray, folder: Path) -> Path:
    """Grad-CAM pictures of the given predictions, on the images as the model saw them."""
    from gender_cls.explain import write_gradcams

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
