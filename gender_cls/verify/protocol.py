"""The pairs protocol's arithmetic, as LFW's View 2 defines it: for each fold, the threshold that
gives the best accuracy on the other folds, applied to that fold; the mean and standard
deviation of the fold accuracies. Beside it the threshold-free figures: ROC AUC, the equal error
rate and the true accept rate at a false accept rate.

scikit-learn gives the ROC curve; the fold loop and the threshold search are the protocol's own
(a threshold at a midpoint between two sorted scores, as insightface's and dlib's scripts do).
"""

from __future__ import annotations

import numpy as np

FARS = (1e-3, 1e-2)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (score >= t: same person) with the highest accuracy on these pairs; of
    equally good ones, the middle one. Candidates: midpoints between sorted distinct scores,
    and one below and one above them all."""
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2,
                                 [values[-1] + 1e-6]])  # fmt: skip
    order = np.argsort(scores)
    sorted_same = same[order].astype(np.int64)
    # accepted at t: the pairs with score >= t; correct = same accepted + different refused
    below = np.searchsorted(scores[order], candidates, side="left")  # pairs refused at each t
    same_refused = np.concatenate([[0], np.cumsum(sorted_same)])[below]
    different_refused = below - same_refused
    correct = (sorted_same.sum() - same_refused) + different_refused
    best = np.flatnonzero(correct == correct.max())
    return float(candidates[best[len(best) // 2]])


def fold_results(scores, same, folds) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy, threshold) of each fold, its threshold chosen on all the other folds."""
    scores, same, folds = np.asarray(scores, float), np.asarray(same, bool), np.asarray(folds)
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        held = folds == fold
        threshold = best_threshold(scores[~held], same[~held])
        accuracies.append(float(np.mean((scores[held] >= threshold) == same[held])))
        thresholds.append(threshold)
    return np.asarray(accuracies), np.asarray(thresholds)


def equal_error_rate(same, scores) -> float:
    """Where the false accept rate equals the false reject rate (their mean at the closest
    point of the ROC curve)."""
    from sklearn.metrics import roc_curve  # kept out of start-up

    far, tar, _ = roc_curve(same, scores, drop_intermediate=False)
    frr = 1 - tar
    closest = int(np.argmin(np.abs(far - frr)))
    return float((far[closest] + frr[closest]) / 2)


def tar_at_far(same, scores, far: float) -> float:
    """The share of same-person pairs accepted at the strictest threshold whose false accept
    rate among two-person pairs is at most `far`."""
    from sklearn.metrics import roc_curve  # kept out of start-up

    fpr, tpr, _ = roc_curve(same, scores, drop_intermediate=False)
    allowed = fpr <= far
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def threshold_at_far(same, scores, far: float) -> float:
    """The lowest threshold (score >= t: same person) that accepts at most a `far` share of the
    different-person scores: with n of them, floor(far * n) may pass (none below 1 / n)."""
    impostors = np.sort(np.asarray(scores, float)[~np.asarray(same, bool)])[::-1]
    if not len(impostors):
        raise ValueError("no different-person scores to choose a threshold on")
    allowed = int(np.floor(far * len(impostors) + 1e-9))
    if allowed >= len(impostors):
        return float(impostors[-1])
    return float(np.nextafter(impostors[allowed], np.inf))


def pairs_metrics(scores, same, folds) -> dict:
    """metrics.json of the protocol: the fold accuracies and their mean and standard deviation
    (numpy's, over the folds), the median fold threshold, ROC AUC, EER, TAR at FAR 1e-3 and
    1e-2, and the counts."""
    from sklearn.metrics import roc_auc_score  # kept out of start-up

    scores, same = np.asarray(scores, float), np.asarray(same, bool)
    accuracies, thresholds = fold_results(scores, same, folds)
    return {
        "accuracy_mean": float(accuracies.mean()),
        "accuracy_std": float(accuracies.std()),
        "fold_accuracies": accuracies.round(6).tolist(),
        "fold_thresholds": thresholds.tolist(),  # unrounded: pairs.csv decides with them
        "threshold": float(np.median(thresholds)),
        "roc_auc": float(roc_auc_score(same, scores)),
        "eer": equal_error_rate(same, scores),
        "tar_at_far": {f"{far:g}": tar_at_far(same, scores, far) for far in FARS},
        "pairs": int(len(same)),
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
        "folds": int(len(accuracies)),
    }
