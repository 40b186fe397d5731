"""Classification metrics, one home for training and evaluation: at a threshold, and in full."""

from __future__ import annotations

import numpy as np

from gender_cls.metrics.calibration import apply_temperature, calibration_metrics, fit_temperature
from gender_cls.metrics.thresholds import tune_threshold


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1 and positive-class precision/recall/F1 at a threshold."""
    from sklearn import metrics  # kept out of start-up

    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = (np.asarray(scores).ravel() >= threshold).astype(int)
    return {
        "threshold": float(threshold),
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "precision": float(metrics.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(metrics.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(metrics.f1_score(y_true, y_pred, zero_division=0)),
    }


def compute_metrics(y_true, probabilities, y_pred, class_names) -> dict:
    """Accuracy, balanced accuracy, macro F1, ROC AUC, average precision, per class, confusion."""
    from sklearn import metrics  # kept out of start-up

    labels = list(range(len(class_names)))
    per_class = metrics.classification_report(
        y_true, y_pred, labels=labels, target_names=class_names, output_dict=True, zero_division=0
    )
    result = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "roc_auc": None,
        "average_precision": None,
        "per_class": {name: per_class[name] for name in class_names},
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "counts": {name: int((y_true == i).sum()) for i, name in enumerate(class_names)},
    }
    if len(np.unique(y_true)) == len(class_names):  # AUC needs every class present
        if len(class_names) == 2:
            result["roc_auc"] = float(metrics.roc_auc_score(y_true, probabilities[:, 1]))
            result["average_precision"] = float(
                metrics.average_precision_score(y_true, probabilities[:, 1])
            )
        else:
            onehot = np.eye(len(class_names))[y_true]
            result["roc_auc"] = float(
                metrics.roc_auc_score(y_true, probabilities, multi_class="ovr")
            )
            result["average_precision"] = float(
                metrics.average_precision_score(onehot, probabilities, average="macro")
            )
    return result


def report_text(y_true, y_pred, class_names) -> str:
    """scikit-learn's classification report with every class listed, four digits."""
    from sklearn.metrics import classification_report  # kept out of start-up

    labels = list(range(len(class_names)))
    return classification_report(
        y_true, y_pred, labels=labels, target_names=class_names, digits=4, zero_division=0
    )


def validation_report(
    labels,
    probabilities,
    class_names: list[str],
    metric: str,
    calibrate: bool = False,
    source: str = "the validation set",
) -> dict:
    """The decision rule and metrics a model card holds: with `calibrate`, the temperature fitted
    on these [N, classes] probabilities (ECE and Brier before and after); for two classes, the
    threshold tuned (on the calibrated scores) to maximise `metric`, and metrics at 0.5 and at it."""

    labels = np.asarray(labels)
    report: dict = {"temperature": 1.0}
    if calibrate:
        temperature = fit_temperature(labels, probabilities)
        before = calibration_metrics(labels, probabilities)
        probabilities = apply_temperature(probabilities, temperature)
        after = calibration_metrics(labels, probabilities)
        report["temperature"] = temperature
        report["calibration"] = {f"{k}_{when}": v for when, values in
                                 (("before", before), ("after", after)) for k, v in values.items()}  # fmt: skip
    if len(class_names) == 2:
        scores = np.asarray(probabilities)[:, 1]
        threshold = tune_threshold(labels, scores, metric)
        return {**report, "threshold": threshold,
                "threshold_source": f"tuned on {source} to maximise {metric}",
                "at_0.5": binary_metrics(labels, scores, 0.5),
                "at_threshold": binary_metrics(labels, scores, threshold)}  # fmt: skip
    metrics = compute_metrics(labels, probabilities, probabilities.argmax(axis=1), class_names)
    scalars = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "average_precision")
    return {**report, "threshold": None, "threshold_source": "argmax (multi-class)",
            "argmax": {name: metrics[name] for name in scalars}}  # fmt: skip
