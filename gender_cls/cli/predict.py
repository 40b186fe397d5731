"""predict.py / gender-cls predict."""

from __future__ import annotations

import json

import rich_click as click

from gender_cls.atomic import unique_stems
from gender_cls.cli.common import (
    CONTEXT,
    handle_errors,
    option_panels,
    quiet_tensorflow,
    setup_logging,
)
from gender_cls.cli.model_options import model_options, predictor_options, with_model_panels
from gender_cls.errors import UserError


@click.command("predict", context_settings=CONTEXT)
@option_panels(with_model_panels({
    "Images": ["image_paths", "top_k", "max_pixels"],
    "Output": ["save_dir", "gradcam"],
}))  # fmt: skip
@click.option(
    "--image_path",
    "--image",
    "image_paths",
    multiple=True,
    help="An image file or folder; more may follow as plain arguments.",
)
@click.argument("more_paths", nargs=-1)
@click.option(
    "--top_k",
    "top_k",
    type=int,
    default=1,
    help="Multi-class: show the k most likely classes.",
)
@click.option(
    "--save_dir",
    "save_dir",
    default=None,
    help="Write each image annotated with its label and confidence here.",
)
@click.option(
    "--gradcam",
    default=None,
    help="Write each image's Grad-CAM (where the model looked) here (needs the Keras model).",
)
@model_options
@handle_errors
def predict_command(image_paths, more_paths, top_k, save_dir, gradcam, model_path, as_json, verbose,
                    engine, ray_address, **options) -> None:  # fmt: skip
    """Predict the class of images (files or folders) with a trained model.

    \b
    python predict.py --image_path photo.jpg --model_path runs/gender-mnv2
    python predict.py --image_path a.jpg b.png some_folder/ --model_path model.keras --json
    """
    paths = list(image_paths) + list(more_paths)
    if not paths:
        raise UserError("no images: pass --image_path FILE_OR_FOLDER")
    from gender_cls.artifacts.card import resolve_model  # loaded on use: a fast start-up
    from gender_cls.predict.predictor import Predictor  # loaded on use: a fast start-up
    from gender_cls.predict.runners import exported_file  # loaded on use: a fast start-up

    chosen = predictor_options(options)
    model = resolve_model(model_path)
    quiet_tensorflow(verbose, import_now=exported_file(model, chosen["backend"]) is None)
    setup_logging(verbose)
    predictor = Predictor(model, **chosen)
    for line in predictor.assumptions:
        click.echo(f"assumed: {line}", err=True)
    if engine == "ray":
        from gender_cls.predict import ray_engine  # loaded on use: a fast start-up
        from gender_cls.predict.inputs import expand_paths  # loaded on use: a fast start-up

        files = expand_paths(paths)
        results = list(ray_engine.predict_paths(files, predictor.model_file, chosen, ray_address))
    else:
        results = predictor.predict_paths(paths)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            if r.error:
                click.echo(f"error  {r.path}: cannot read image ({r.error})", err=True)
            elif top_k > 1 and not predictor.binary:
                ranked = sorted(r.probabilities.items(), key=lambda kv: -kv[1])[:top_k]
                click.echo("  ".join(f"{n} {p:6.1%}" for n, p in ranked) + f"  {r.path}")
            else:
                click.echo(f"{_decision(r, predictor)}  {r.path}{_face_note(r)}")
    if save_dir:  # after the results are out, so a folder that cannot be written loses nothing
        from gender_cls.predict.annotate import save_annotated  # loaded on use: a fast start-up

        save_annotated([r for r in results if r.error is None], save_dir)
    if gradcam:
        _write_gradcams(predictor, [r for r in results if r.error is None], gradcam)
    if any(r.error for r in results):
        raise SystemExit(1)


def _decision(prediction, predictor) -> str:
    """'male  P(male) 49.9% >= threshold 41.2%' for a binary model, so a label under 50% reads
    as what it is; 'label  97.3%' (its probability) for a multi-class one."""
    if not predictor.binary:
        return f"{prediction.label}  {prediction.confidence:6.1%}"
    positive = predictor.class_names[1]
    p, threshold = prediction.probabilities[positive], prediction.threshold
    sign = ">=" if p >= threshold else "<"
    return f"{prediction.label}  P({positive}) {p:6.1%} {sign} threshold {threshold:.1%}"


def _face_note(prediction) -> str:
    """'  face at x0,y0-x1,y1' or '  no face found: whole image' with a face crop, else ''."""
    if prediction.face_found is None:
        return ""
    if not prediction.face_found:
        return "  no face found: whole image used"
    x0, y0, x1, y1 = (round(v) for v in prediction.face_box)
    return f"  face at {x0},{y0}-{x1},{y1}"


def _write_gradcams(predictor, results, out_dir: str) -> None:
    """Grad-CAM of each prediction, on the image as the model saw it (its face, with a crop)."""
    from gender_cls.predict.gradcam import write_gradcams  # loaded on use: a fast start-up

    images, _, _ = predictor.load_inputs([r.path for r in results], crop=True)
    captions = [f"{r.label} {r.confidence:.1%}" for r in results]
    names = [f"{stem}_gradcam.png" for stem in unique_stems([r.path for r in results], flat=True)]
    write_gradcams(predictor, images, captions, names, out_dir)
