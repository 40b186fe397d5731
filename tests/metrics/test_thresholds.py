"""The threshold sweep: known optima, ties, agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from gender_cls.metrics.classification import binary_metrics
from gender_cls.metrics.thresholds import threshold_sweep, tune_threshold

Y = np.array([0, 0, 0, 1, 1, 1])


S = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.9])


def test_f1_optimum_on_a_known_score_set():
    # score >= 0.4 catches every positive with one false positive: F1 6/7, the best possible.
    threshold = tune_threshold(Y, S, "f1")
    assert 0.2 < threshold <= 0.4
    assert binary_metrics(Y, S, threshold)["f1"] == pytest.approx(6 / 7)


def test_ties_go_to_the_threshold_nearest_one_half():
    # Balanced accuracy 5/6 at both ">= 0.4" and ">= 0.7"; 0.4 is nearer 0.5.
    assert 0.2 < tune_threshold(Y, S, "balanced_accuracy") <= 0.4


@pytest.mark.parametrize("metric", ["f1", "balanced_accuracy", "youden"])
def test_tuned_threshold_beats_every_threshold_on_a_grid(metric):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = np.clip(y * 0.3 + rng.normal(0.35, 0.2, 300), 0, 1)
    best = binary_metrics(y, scores, tune_threshold(y, scores, metric))

    def score(t):
        pred = (scores >= t).astype(int)
        if metric == "f1":
            return f1_score(y, pred)
        tpr = (pred[y == 1] == 1).mean()
        fpr = (pred[y == 0] == 1).mean()
        return balanced_accuracy_score(y, pred) if metric == "balanced_accuracy" else tpr - fpr

    grid_best = max(score(t) for t in np.linspace(0, 1, 501))
    value = best[metric] if metric != "youden" else 2 * best["balanced_accuracy"] - 1
    assert value >= grid_best - 1e-9


def test_sweep_values_agree_with_sklearn():
    sweep = threshold_sweep(Y, S)
    for t, f1 in zip(sweep["threshold"], sweep["f1"], strict=True):
        assert f1 == pytest.approx(f1_score(Y, (S >= t).astype(int)))


def test_single_class_labels_fall_back_to_one_half():
    assert tune_threshold(np.ones(5), np.linspace(0, 1, 5)) == 0.5
