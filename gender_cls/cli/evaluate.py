"""test_script.py / gender-cls evaluate."""

from __future__ import annotations

import json

import rich_click as click

from gender_cls.cli.common import (
    CONTEXT,
    handle_errors,
    option_panels,
    progress_verbosity,
    quiet_tensorflow,
    setup_logging,
    threshold_metric_option,
)
from gender_cls.cli.model_options import model_options, predictor_options, with_model_panels
from gender_cls.config import (
    FACE_FALLBACKS,
)


@click.command("evaluate", context_settings=CONTEXT)
@option_panels(with_model_panels({
    "Test data": ["data_path", "split", "groups", "face_fallback", "face_cache", "max_pixels"],
    "Threshold": ["tune_on", "threshold_metric"],
    "Output": ["output_dir", "max_misclassified", "gradcam"],
}))  # fmt: skip
@click.option(
    "--data_path",
    "--data_dir",
    "--test_dir",
    "data_path",
    default=None,
    help="Labelled test images: <class>/ folders, or a root with test/.",
)
@click.option(
    "--split",
    type=click.Choice(["val", "test"]),
    default=None,
    help="Instead of --data_path: the run's own validation or test images (its split.json).",
)
@click.option(
    "--output_dir",
    "output_dir",
    default="evaluation_results",
    help="Where the report, plots and misclassified images go.",
)
@click.option(
    "--tune_on",
    "tune_on",
    default=None,
    help="Re-tune the threshold on this labelled folder (never the test set) first.",
)
@threshold_metric_option("What --tune_on maximises.")
@click.option(
    "--max_misclassified",
    "max_misclassified",
    type=int,
    default=None,
    help="Copy only the N most confident mistakes [default: all].",
)
@click.option(
    "--gradcam",
    type=click.IntRange(0),
    default=0,
    help="Grad-CAM pictures of the N most confident mistakes (needs the Keras model).",
)
@click.option(
    "--face_fallback",
    type=click.Choice(FACE_FALLBACKS),
    default="full",
    help="With a face crop, an image without a face: use it whole, or report it apart.",
)
@click.option(
    "--groups",
    default=None,
    help="Per-group report: a CSV (image path or file name, then attribute columns, with a "
    "header) or 'utkface' (age band and race from age_gender_race_date.jpg names).",
)
@click.option(
    "--face_cache",
    default=None,
    show_default="~/.cache/gender_cls/faces",
    help="Folder for the aligned crops.",
)
@model_options
@handle_errors
def evaluate_command(data_path, split, output_dir, tune_on, threshold_metric, max_misclassified, gradcam,
                     face_fallback, groups, face_cache, model_path, as_json, verbose, engine,
                     ray_address, **options) -> None:  # fmt: skip
    """Evaluate a trained model on a labelled test folder and write a full report.

    \b
    python test_script.py --data_path TEST_DIR --model_path runs/gender-mnv2 \\
        --output_dir evaluation_results
    python test_script.py --model_path runs/gender-mnv2 --split val
    """
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    from gender_cls.api import evaluate  # loaded on use: a fast start-up

    scorer = None
    if engine == "ray":
        from gender_cls.predict import ray_engine  # loaded on use: a fast start-up

        scorer = ray_engine.scorer(ray_address)

    result = evaluate(
        model_path, data_path, split=split, tune_on=tune_on, threshold_metric=threshold_metric,
        face_fallback=face_fallback, face_cache=face_cache, groups=groups,
        verbose=progress_verbosity(as_json), scorer=scorer,
        **predictor_options(options),
    )  # fmt: skip
    for line in result.assumptions:
        click.echo(f"assumed: {line}", err=True)
    if as_json:
        click.echo(json.dumps(result.metrics, indent=2))
    else:  # printed first, so a folder that cannot be written loses nothing
        click.echo(result_summary(result))
    written = result.write(output_dir, max_misclassified, gradcam)
    if not as_json:
        click.echo("wrote:\n" + "\n".join(f"  {path}" for path in written))


def result_summary(result) -> str:
    """The report, a line of headline metrics, the per-group table and the mistake count."""
    m = result.metrics
    summary = f"accuracy {m['accuracy']:.4f}  balanced accuracy {m['balanced_accuracy']:.4f}  "
    summary += f"macro-F1 {m['macro_f1']:.4f}"
    if m["roc_auc"] is not None:
        summary += f"  ROC AUC {m['roc_auc']:.4f}"
    summary += f"  ECE {m['ece']:.4f}  Brier {m['brier']:.4f}"
    if "tta" in m:
        plain = m["tta"]["without_tta"]
        summary += (
            f"\nwith TTA ({m['tta']['views']} views); without: accuracy {plain['accuracy']:.4f}"
        )
    parts = [result.full_report(), summary]
    if "groups" in m:
        from gender_cls.evaluation.fairness import format_report  # loaded on use: a fast start-up

        parts.append("\n" + format_report(m["groups"], result.class_names))
    parts.append(f"{len(result.misclassified())} of {len(result.paths)} misclassified")
    return "\n".join(parts)
