"""gender-cls export and crop-faces."""

from __future__ import annotations

import time

import rich_click as click

from gender_cls.cli.common import (
    CONTEXT,
    VERBOSE_OPTION,
    Finite,
    format_calibration,
    handle_errors,
    model_path_option,
    quiet_tensorflow,
    setup_logging,
    threshold_metric_option,
)
from gender_cls.config import (
    DISTORTION_KINDS,
    FACE_DETECTORS,
    FACE_FALLBACKS,
    FACE_TEMPLATES,
    FaceCrop,
)


@click.command("export", context_settings=CONTEXT)
@model_path_option("Run directory or model.keras with its model.json beside it.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tflite", "onnx", "savedmodel"]),
    default="tflite",
    help="TFLite (run by LiteRT), ONNX (onnxruntime) or a TensorFlow SavedModel.",
)
@click.option(
    "--quantize",
    type=click.Choice(["float16", "int8"]),
    default=None,
    help="TFLite only; int8 calibrates on training images from the run's split.",
)
@VERBOSE_OPTION
@handle_errors
def export_command(model_path, fmt, quantize, verbose) -> None:
    """Export a trained model (checked against Keras) and record it in model.json.

    predict.py and test_script.py then use the export by default (--backend auto), TFLite
    before ONNX; a .tflite or .onnx file can also be passed as --model_path.
    """
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    from gender_cls.api import export  # loaded on use: a fast start-up

    record = export(model_path, fmt, quantize)
    line = f"exported {record['file']} ({fmt}{', ' + quantize if quantize else ''})"
    if "max_abs_diff_vs_keras" in record:
        line += f"; largest output difference vs Keras {record['max_abs_diff_vs_keras']:.2e}"
    click.echo(line)


@click.command("crop-faces", context_settings=CONTEXT)
@click.argument("src", type=click.Path(path_type=str))
@click.argument("dst", type=click.Path(path_type=str))
@click.option("--size", type=click.IntRange(16), default=224, help="Side of each square crop.")
@click.option("--face_detector", type=click.Choice(FACE_DETECTORS), default="blazeface",
              help="blazeface (LiteRT, fast) or mtcnn (TensorFlow).")  # fmt: skip
@click.option("--face_margin", type=Finite(0, 1), default=0.25,
              help="Context kept around the aligned face, a share of its size per side.")  # fmt: skip
@click.option("--face_template", type=click.Choice(FACE_TEMPLATES[1:]), default="arcface",
              help="Where the face is put: ArcFace's template, or dlib's chips (the crop "
                   "dlib_face_resnet expects, e.g. --size 150).")  # fmt: skip
@click.option("--face_fallback", type=click.Choice(FACE_FALLBACKS), default="full",
              help="No face found: write the whole image resized, or nothing.")  # fmt: skip
@VERBOSE_OPTION
@handle_errors
def crop_faces_command(src, dst, size, face_detector, face_margin, face_template, face_fallback,
                       verbose) -> None:  # fmt: skip
    """Write the aligned face of every image under SRC to the same place under DST (PNG).

    \b
    gender-cls crop-faces photos/ photos_faces/ --size 224
    """
    quiet_tensorflow(verbose, import_now=face_detector == "mtcnn")
    setup_logging(verbose)
    from gender_cls.faces.cache import crop_tree  # loaded on use: a fast start-up

    start = time.perf_counter()
    report = crop_tree(
        src, dst, FaceCrop(face_detector, face_margin, face_template), size, face_fallback
    )
    seconds = time.perf_counter() - start
    total = report.found + len(report.no_face) + len(report.unreadable)
    click.echo(f"{report.summary()}; {total / seconds:.1f} images/s; wrote {dst}")
    for path, reason in report.unreadable:
        click.echo(f"error  {path}: cannot read image ({reason})", err=True)
    if report.unreadable:
        raise SystemExit(1)


@click.command("calibrate", context_settings=CONTEXT)
@model_path_option("Run directory (its split.json names the validation images).")
@threshold_metric_option("What the re-tuned threshold maximises.")
@VERBOSE_OPTION
@handle_errors
def calibrate_command(model_path, threshold_metric, verbose) -> None:
    """Fit temperature scaling on the run's validation images and store it in model.json (and
    inside the model file); the threshold is re-tuned on the calibrated probabilities.

    \b
    gender-cls calibrate --model_path runs/gender-mnv2
    """
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    from gender_cls.evaluation.recalibrate import calibrate_model  # loaded on use: a fast start-up

    report = calibrate_model(model_path, threshold_metric)
    click.echo(format_calibration(report))


@click.command("distort", context_settings=CONTEXT)
@click.argument("src", type=click.Path(path_type=str))
@click.argument("dst", type=click.Path(path_type=str))
@click.option(
    "--kinds",
    default=",".join(DISTORTION_KINDS),
    show_default=True,
    help="Comma-separated distortions; each image gets one copy per kind.",
)
@click.option("--seed", type=int, default=0, help="Same seed, same copies.")
@handle_errors
def distort_command(src, dst, kinds, seed) -> None:
    """Write a distorted copy of every image under SRC to the same folders under DST, as
    <stem>_<kind>.jpg (probes for face verification from your own photos).

    \b
    gender-cls distort gallery/ probes/ --kinds blur,noise,fog,rain,lowlight --seed 1
    """
    setup_logging(False)
    from gender_cls.data.augment.distort import (  # loaded on use: a fast start-up
        distort_tree,
        parse_kinds,
    )

    start = time.perf_counter()
    report = distort_tree(src, dst, parse_kinds(kinds), seed)
    click.echo(f"wrote {report.written} images to {dst} in {time.perf_counter() - start:.1f}s")
    for path, reason in report.unreadable:
        click.echo(f"error  {path}: cannot read image ({reason})", err=True)
    if report.unreadable:
        raise SystemExit(1)
