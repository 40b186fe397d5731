"""The model options evaluate and predict share, and the Predictor arguments they make."""

from __future__ import annotations

import rich_click as click

from gender_cls.cli.common import (
    RAY_ADDRESS_OPTION,
    VERBOSE_OPTION,
    Finite,
    apply_options,
    model_path_option,
    split_classes,
    split_floats,
)
from gender_cls.config import INPUT_SCALES
from gender_cls.predict.input_spec import OUTPUT_KINDS

PREDICTOR_OPTIONS = ("classes", "input_scale", "input_mean", "input_std", "bgr", "output",
                     "threshold", "batch_size", "backend", "mixed_precision", "jit", "face_crop",
                     "tta")  # fmt: skip


MODEL_PANELS = {  # the model options' panels, after those of the command itself
    "Model": ["model_path", "threshold", "face_crop", "tta"],
    "Models from other toolkits": ["classes", "input_scale", "input_mean", "input_std", "bgr",
                                   "output"],
    "Speed": ["batch_size", "backend", "mixed_precision", "jit", "engine", "ray_address"],
    "Output": ["as_json", "verbose", "help"],
}  # fmt: skip


def with_model_panels(own: dict[str, list[str]]) -> dict[str, list[str]]:
    """A command's own panels, then the model options' (panels of one title merged)."""
    panels = {title: list(names) for title, names in own.items()}
    for title, names in MODEL_PANELS.items():
        panels.setdefault(title, []).extend(names)
    panels["Output"] = panels.pop("Output")  # last
    return panels


def predictor_options(options: dict) -> dict:
    """The Predictor's keyword arguments among a command's options (removed from `options`)."""
    chosen = {name: options.pop(name) for name in PREDICTOR_OPTIONS}
    from gender_cls.predict.runners import keras_if_asked  # loaded on use: a fast start-up

    chosen["backend"] = keras_if_asked(chosen["backend"], chosen["mixed_precision"], chosen["jit"])
    return chosen


def model_options(command):
    options = [
        model_path_option("Run directory, or a .keras/.h5/.tflite/.onnx file (with its .json "
                          "beside, or bare)."),
        click.option("--classes", callback=split_classes, default=None,
                     help="Bare models only: class names in output order, e.g. female,male."),
        click.option("--input_scale", "input_scale",
                     type=click.Choice(INPUT_SCALES), default=None, show_default="unit",
                     help="Bare models: pixels /255 (unit), 0-255 (raw) or torchvision's ImageNet "
                          "mean/std (imagenet)."),
        click.option("--input_mean", callback=split_floats, default=None,
                     help="Bare models: subtract this from 0-255 pixels, one value or R,G,B."),
        click.option("--input_std", callback=split_floats, default=None,
                     help="Bare models: then divide by this, one value or R,G,B."),
        click.option("--bgr", is_flag=True, help="Bare models: feed channels as BGR (OpenCV, "
                                                 "Caffe) instead of RGB."),
        click.option("--output", "output", type=click.Choice(OUTPUT_KINDS), default="auto",
                     help="Bare models: logits get a sigmoid/softmax; auto tells them apart on "
                          "test inputs."),
        click.option("--threshold", type=Finite(0, 1), default=None,
                     help="Decision threshold on P(second class) [default: the model's tuned one]."),
        click.option("--batch_size", "batch_size", type=click.IntRange(min=1), default=32,
                     help="Images per batch."),
        click.option("--backend", type=click.Choice(["auto", "keras", "tflite", "onnx"]),
                     default="auto", help="auto: the run's TFLite (else ONNX) export when there is "
                     "one (fast start, no TensorFlow), else the Keras model."),
        click.option("--mixed_precision/--no-mixed_precision", "mixed_precision", default=False,
                     help="Keras model on a GPU: mixed_float16 compute (implies --backend keras)."),
        click.option("--jit/--no-jit", default=None, show_default="Keras decides: on with a GPU",
                     help="Keras model: XLA on or off (either implies --backend keras)."),
        click.option("--tta", type=click.IntRange(1, 10), default=1,
                     help="Test-time augmentation: average over N views (the image, its mirror "
                          "if trained with flips, zooms, shifts); 1 turns it off."),
        click.option("--face_crop/--no-face_crop", default=None,
                     show_default="as the model was trained",
                     help="Crop and align the face of each image first (BlazeFace)."),
        click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                     help="Where the images are predicted: this process, or Ray Data actors "
                          "(streaming, over every CPU of a Ray cluster; pip install "
                          "'gender_cls[ray]')."),
        RAY_ADDRESS_OPTION,
        click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout."),
        VERBOSE_OPTION,
    ]  # fmt: skip
    return apply_options(command, options)
