"""Measuring a verifier: probes against a gallery, metrics overall and per distortion kind, and
their files."""

from __future__ import annotations

import csv
import logging
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
from gender_cls.verify.pairs import CSV_FOLDS, read_pairs
from gender_cls.verify.protocol import pairs_metrics, tar_at_far
from gender_cls.verify.verifier import FaceEmbedder, Verifier

log = logging.getLogger(__name__)


def probe_files(folder: str | Path) -> list[Path]:
    found = list_images(Path(folder)) if Path(folder).is_dir() else [Path(folder)]
    if not found:
        raise UserError(f"{folder}: no probe images")
    return found


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


def evaluate_pairs(model_path, pairs_file, images, out_dir, folds: int = CSV_FOLDS) -> dict:
    """The pairs protocol (LFW's View 2) for a train-verifier run or a backbone with its own
    embedding: each image of the pairs embedded once, through the model's face crop (where no
    face is found, the whole photo: counted and listed, never dropped); each pair scored by the
    cosine similarity of its two embeddings. Writes metrics.json, pairs.csv (each pair's score,
    fold, the threshold its fold was given and the decision) and roc_curve.png (log-scale FAR)."""
    pairs = read_pairs(pairs_file, images, folds)
    faces = FaceEmbedder.open(model_path)
    files = sorted({str(p) for pair in pairs for p in (pair.a, pair.b)})
    log.info("%d pairs in %d folds: embedding %d images", len(pairs),
             len({p.fold for p in pairs}), len(files))  # fmt: skip
    embedded, missing = faces.embed_faces(files)
    vectors, missing = dict(zip(files, embedded, strict=True)), set(missing)
    scores = np.array([float(vectors[str(p.a)] @ vectors[str(p.b)]) for p in pairs])
    same, fold = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])
    result = pairs_metrics(scores, same, fold)
    result.update(model=str(model_path), pairs_file=str(pairs_file), images=len(files),
                  no_face=len(missing), no_face_rule="the whole photo is embedded instead",
                  no_face_images=sorted(missing))  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "metrics.json")
    fold_threshold = dict(enumerate(result["fold_thresholds"]))
    with (
        replacing(out / "pairs.csv") as temp,
        temp.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(["path_a", "path_b", "same", "fold", "score", "threshold", "decision",
                         "no_face"])  # fmt: skip
        for pair, score in zip(pairs, scores, strict=True):
            threshold = fold_threshold[pair.fold]
            no_face = "+".join(n for n, p in (("a", pair.a), ("b", pair.b)) if str(p) in missing)
            writer.writerow([pair.a, pair.b, int(pair.same), pair.fold, f"{score:.6f}",
                             f"{threshold:.6f}", int(score >= threshold), no_face])  # fmt: skip
    plots.roc_log_far(same, scores, out / "roc_curve.png", f"{Path(pairs_file).name}: ROC")
    return result
