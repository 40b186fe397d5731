"""Classification metrics, one home for training and evaluation: at a threshold, and in full."""

from __future__ import annotations

import numpy as np


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1 and positive-class precision/recall/F1 at a threshold."""
    from sklearn import metrics

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
    from sklearn import metrics

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
    from sklearn.metrics import classification_report

    labels = list(range(len(class_names)))
    return classification_report(
        y_true, y_pred, labels=labels, target_names=class_names, digits=4, zero_division=0
    )
