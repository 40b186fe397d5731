"""Calibrate a trained model after the fact: temperature scaling fitted on its run's validation
split, the threshold re-tuned on the calibrated scores, both stored in its card."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gender_cls.artifacts.card import ModelRef, resolve_model, update_card
from gender_cls.artifacts.run_folder import run_lock
from gender_cls.errors import UserError
from gender_cls.evaluation.evaluate import evaluate
from gender_cls.metrics.classification import validation_report


def calibrate_model(
    model_path: str | Path | ModelRef, threshold_metric: str | None = None, **options
) -> dict:
    """Fit the temperature on the run's validation images (predicted uncalibrated), re-tune the
    threshold, write the card beside and inside the model; returns the validation report.
    `options` go to the Predictor (backend, batch_size...)."""
    model = resolve_model(model_path)
    card = model.card
    if card is None or card.config is None:
        raise UserError(f"{model.file}: calibration needs a model trained by gender_cls (its run's "
                        "split.json holds the validation images)")  # fmt: skip
    with run_lock(model.file.parent):
        return _calibrate(resolve_model(model.file), threshold_metric, **options)


def _calibrate(model: ModelRef, threshold_metric: str | None, **options) -> dict:
    """calibrate_model's work, under the folder's lock, on the card as it is now."""
    card = model.card
    found = evaluate(model, split="val", calibrated=False, **options)
    metric = threshold_metric or card.config.train.threshold_metric
    report = validation_report(found.y_true, found.probabilities, card.class_names, metric,
                               calibrate=True, source="the validation set (calibrated)")  # fmt: skip
    calibrated = dataclasses.replace(
        card, temperature=report["temperature"], threshold=report["threshold"],
        threshold_source=report["threshold_source"], validation=report,
    )  # fmt: skip
    update_card(model, calibrated)
    return report
