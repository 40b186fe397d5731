"""The pairs protocol's arithmetic against a case computed by hand, and the threshold search
against a brute force."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cls.verify.protocol import (
    best_threshold,
    fold_results,
    pairs_metrics,
    threshold_at_far,
)


def test_two_folds_by_hand():
    """Fold 0: same 0.9 0.8, different 0.3 0.5. Fold 1: same 0.7 0.4, different 0.6 0.2.
    Fold 0 is given fold 1's best threshold: 0.3 and 0.65 both get 3 of 4 right there, the
    middle of the two (the second) is 0.65; on fold 0 it gets 4 of 4. Fold 1 is given fold 0's:
    0.65 alone gets 4 of 4; on fold 1 it refuses the same pair at 0.4: 3 of 4."""
    scores = [0.9, 0.8, 0.3, 0.5, 0.7, 0.4, 0.6, 0.2]
    same = [1, 1, 0, 0, 1, 1, 0, 0]
    folds = [0, 0, 0, 0, 1, 1, 1, 1]
    accuracies, thresholds = fold_results(scores, same, folds)
    assert accuracies.tolist() == [1.0, 0.75]
    assert thresholds.tolist() == pytest.approx([0.65, 0.65])
    metrics = pairs_metrics(scores, same, folds)
    assert (metrics["accuracy_mean"], metrics["accuracy_std"]) == (0.875, 0.125)
    assert metrics["threshold"] == pytest.approx(0.65)
    assert (metrics["pairs"], metrics["same_pairs"], metrics["folds"]) == (8, 4, 2)
    assert metrics["roc_auc"] == pytest.approx(14 / 16)  # 14 of 16 same/different orders right
    assert metrics["eer"] == pytest.approx(0.25)


def test_the_threshold_search_is_the_brute_force_one():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores, same = rng.normal(size=30).round(1), rng.random(30) < 0.5
        values = np.unique(scores)
        candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2,
                                     [values[-1] + 1e-6]])  # fmt: skip
        accuracy = np.array([np.mean((scores >= t) == same) for t in candidates])
        best = np.flatnonzero(accuracy == accuracy.max())
        assert best_threshold(scores, same) == candidates[best[len(best) // 2]]


def test_the_threshold_at_a_false_accept_rate_accepts_at_most_that_share_of_impostors():
    same = np.array([1, 1, 0, 0, 0, 0], bool)
    scores = np.array([0.95, 0.45, 0.9, 0.5, 0.4, 0.3])
    one_in_four = threshold_at_far(same, scores, 0.25)
    assert 0.5 < one_in_four < 0.5 + 1e-12  # just above the second impostor: only 0.9 passes
    assert np.sum(scores[~same] >= one_in_four) == 1
    assert threshold_at_far(same, scores, 1e-3) > 0.9  # 4 impostors: none may pass
    assert threshold_at_far(same, scores, 1.0) == 0.3
