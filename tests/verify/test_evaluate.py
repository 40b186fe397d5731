"""Verification metrics and threshold on a constructed case."""

from __future__ import annotations

import numpy as np
import pytest


def test_metrics_and_threshold_on_a_constructed_case():
    from gender_cls.metrics.thresholds import tune_threshold
    from gender_cls.verify.evaluate import tar_at_far, verification_metrics

    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.75, 0.7, 0.4, 0.3, 0.2, 0.65])
    threshold = tune_threshold(labels, scores, "balanced_accuracy")
    assert 0.65 < threshold <= 0.7
    m = verification_metrics(labels, scores, threshold, [True, True, False])
    assert (
        m["accuracy"] == 1.0 and m["roc_auc"] == 1.0 and m["top1_accuracy"] == pytest.approx(2 / 3)
    )
    assert tar_at_far(labels, scores, 0.0) == 1.0
