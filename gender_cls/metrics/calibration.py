"""Calibration: expected calibration error, Brier score, reliability bins, temperature scaling."""

from __future__ import annotations

import numpy as np

BINS = 15


def _one_hot(y_true: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[np.asarray(y_true, int)]


def reliability_bins(y_true, probabilities, bins: int = BINS) -> dict[str, np.ndarray]:
    """Per confidence bin (equal width on [0, 1]): mean confidence, accuracy and image count of
    the top-label predictions."""
    p = np.asarray(probabilities, np.float64)
    confidence, predicted = p.max(axis=1), p.argmax(axis=1)
    correct = predicted == np.asarray(y_true)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / counts
        accuracy = np.bincount(index, correct, bins) / counts
    return {"confidence": mean_confidence, "accuracy": accuracy, "count": counts}


def expected_calibration_error(y_true, probabilities, bins: int = BINS) -> float:
    """Top-label ECE: the count-weighted gap between confidence and accuracy over the bins."""
    table = reliability_bins(y_true, probabilities, bins)
    filled = table["count"] > 0
    gaps = np.abs(table["confidence"][filled] - table["accuracy"][filled])
    return float(np.sum(gaps * table["count"][filled]) / table["count"].sum())


def brier_score(y_true, probabilities) -> float:
    """Binary: mean (P(positive) - y)^2, as scikit-learn's; multi-class: the mean squared
    distance to the one-hot label summed over classes."""
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(y_true)
    if p.shape[1] == 2:
        return float(np.mean((p[:, 1] - y) ** 2))
    return float(np.mean(np.sum((p - _one_hot(y, p.shape[1])) ** 2, axis=1)))


def apply_temperature(probabilities, temperature: float) -> np.ndarray:
    """softmax(log p / T): T > 1 softens over-confident scores, T = 1 changes nothing. For two
    columns [1 - p, p] this is sigmoid(logit(p) / T)."""
    p = np.asarray(probabilities, np.float64)
    if temperature == 1.0:
        return p
    logits = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(y_true, probabilities) -> float:
    """The temperature that minimises the negative log-likelihood of the labels (searched on
    log T in [1/20, 20])."""
    from scipy.optimize import minimize_scalar  # kept out of start-up

    y = np.asarray(y_true, int)

    def nll(log_t: float) -> float:
        p = apply_temperature(probabilities, float(np.exp(log_t)))
        return -float(np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))

    best = minimize_scalar(nll, bounds=(-np.log(20), np.log(20)), method="bounded")
    return float(np.exp(best.x))


def calibration_metrics(y_true, probabilities) -> dict[str, float]:
    return {
        "ece": expected_calibration_error(y_true, probabilities),
        "brier": brier_score(y_true, probabilities),
    }
