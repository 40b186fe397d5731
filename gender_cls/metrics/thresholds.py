"""Decision thresholds for binary models: the sweep over every threshold, and tuning one."""

from __future__ import annotations

import numpy as np

from gender_cls.config import THRESHOLD_METRICS


def threshold_sweep(y_true: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Every distinct threshold with the positive-class precision, recall, F1, balanced accuracy
    and Youden's J of predicting `score >= threshold`."""
    from sklearn.metrics import roc_curve  # kept out of start-up

    y_true = np.asarray(y_true).astype(int).ravel()
    fpr, tpr, thresholds = roc_curve(y_true, np.asarray(scores).ravel(), drop_intermediate=False)
    fpr, tpr, thresholds = fpr[1:], tpr[1:], thresholds[1:]  # drop the +inf "predict none" point
    positives, negatives = y_true.sum(), len(y_true) - y_true.sum()
    tp, fp = tpr * positives, fpr * negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
    f1 = 2 * tp / np.maximum(2 * tp + fp + (positives - tp), 1e-12)
    return {
        "threshold": thresholds,
        "precision": precision,
        "recall": tpr,
        "f1": f1,
        "balanced_accuracy": (tpr + 1 - fpr) / 2,
        "youden": tpr - fpr,
    }


def tune_threshold(y_true: np.ndarray, scores: np.ndarray, metric: str = "f1") -> float:
    """The threshold that maximises `metric`; ties go to the one nearest 0.5.

    The threshold sits halfway between the chosen score and the next lower one, so small changes in
    the scores do not flip the decision.
    """
    if metric not in THRESHOLD_METRICS:
        raise ValueError(f"threshold metric must be one of {THRESHOLD_METRICS}, got {metric!r}")
    if len(np.unique(np.asarray(y_true))) < 2:
        return 0.5  # nothing to tune on a single class
    sweep = threshold_sweep(y_true, scores)
    values, thresholds = sweep[metric], sweep["threshold"]
    best = np.flatnonzero(np.isclose(values, values.max()))
    chosen = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    lower = thresholds[chosen + 1] if chosen + 1 < len(thresholds) else 0.0
    return float((thresholds[chosen] + max(lower, 0.0)) / 2)
