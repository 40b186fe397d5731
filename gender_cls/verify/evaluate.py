"""Measuring a verifier: probes against a gallery, metrics overall and per distortion kind, and
their files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from gender_cls import plots
from gender_cls.artifacts.run_folder import write_json
from gender_cls.atomic import replacing
from gender_cls.config import DISTORTION_KINDS
from gender_cls.data.index import (
    list_images,
)
from gender_cls.errors import UserError
from gender_cls.verify.verifier import Verifier


def probe_files(folder: str | Path) -> list[Path]:
    found = list_images(Path(folder)) if Path(folder).is_dir() else [Path(folder)]
    if not found:
        raise UserError(f"{folder}: no probe images")
    return found


def tar_at_far(labels, scores, far: float) -> float:
    """The share of genuine probes accepted at the strictest threshold whose false accept rate
    among impostors is at most `far`."""
    from sklearn.metrics import roc_curve  # kept out of start-up

    fpr, tpr, _ = roc_curve(labels, scores)
    allowed = fpr <= far
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def verification_metrics(labels, scores, threshold: float, top1_correct) -> dict:
    """Match decisions at `threshold` against whether each probe's person is in the gallery."""
    from sklearn import metrics  # kept out of start-up

    labels, decided = np.asarray(labels), np.asarray(scores) >= threshold
    both = len(set(labels.tolist())) == 2
    return {
        "probes": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, decided)),
        "precision": float(metrics.precision_score(labels, decided, zero_division=0)),
        "recall": float(metrics.recall_score(labels, decided, zero_division=0)),
        "f1": float(metrics.f1_score(labels, decided, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, scores)) if both else None,
        "tar_at_far_1e-2": tar_at_far(labels, scores, 1e-2) if both else None,
        "tar_at_far_1e-3": tar_at_far(labels, scores, 1e-3) if both else None,
        "top1_accuracy": float(np.mean(top1_correct)) if len(top1_correct) else None,
    }


def probe_kind(path: Path) -> str:
    """The distortion in a `<stem>_<kind>.jpg` name from gender-cls distort, else "clean"."""

    suffix = path.stem.rsplit("_", 1)[-1]
    return suffix if suffix in DISTORTION_KINDS else "clean"


def evaluate_verifier(run, gallery_dir, probes_dir, out_dir, aggregate: str | None = None) -> dict:
    """Every probe (laid out as <identity>/*.jpg) against the gallery: metrics overall and per
    distortion kind, metrics.json, predictions.csv, the similarity histogram and ROC curve."""

    verifier = Verifier(run, aggregate)
    aggregate, threshold = verifier.aggregate, verifier.threshold
    gallery = verifier.enrol(gallery_dir)
    paths = probe_files(probes_dir)
    scores = verifier.scores(verifier.embed(paths))
    names = list(gallery)
    best, guess = scores.max(axis=1), [names[i] for i in scores.argmax(axis=1)]
    truth = [p.parent.name for p in paths]
    known = np.asarray([t in gallery for t in truth], int)
    kinds = [probe_kind(p) for p in paths]

    def measure(mask) -> dict:
        top1 = [g == t for g, t, k, m in zip(guess, truth, known, mask, strict=True) if k and m]
        return verification_metrics(known[mask], best[mask], threshold, top1)

    everything = np.ones(len(paths), bool)
    result = {"threshold": threshold, "aggregate": aggregate, "overall": measure(everything),
              "per_kind": {k: measure(np.asarray(kinds) == k) for k in sorted(set(kinds))}}  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "metrics.json")
    with (
        replacing(out / "predictions.csv") as temp,
        temp.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(["path", "identity", "kind", "best_identity", "similarity", "match"])
        for p, t, k, g, s in zip(paths, truth, kinds, guess, best, strict=True):
            writer.writerow([p, t, k, g, f"{s:.4f}", int(s >= threshold)])
    plots.similarity_histogram(best[known == 1], best[known == 0], threshold,
                               out / "similarity_histogram.png")  # fmt: skip
    if len(set(known.tolist())) == 2:
        plots.roc_curve(known, best, out / "roc_curve.png")
    return result
