"""Click commands. They parse options and call the library; train_model.py, test_script.py and
predict.py are thin wrappers around them. Exit codes: 0 ok, 1 runtime failure, 2 bad input."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import click

from gender_cls.artifacts import ModelCard
from gender_cls.config import (
    AUGMENT_PLACEMENTS,
    BALANCE_CHOICES,
    EXPORTS,
    FACE_DETECTORS,
    FACE_FALLBACKS,
    FILL_MODES,
    HEAD_CHOICES,
    LOSSES,
    MONITORS,
    OPTIMIZERS,
    RESIZE_CHOICES,
    SCHEDULES,
    STRATEGIES,
    THRESHOLD_METRICS,
    AugmentConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from gender_cls.errors import UserError, silenced_stderr
from gender_cls.model_input import INPUT_SCALES, OUTPUT_KINDS
from gender_cls.recipes import RECIPES


def _dashes_as_underscores(token: str) -> str:
    """--data-path and --data_path are one option (and so are dashed and underscored choices)."""
    return token.replace("-", "_")


CONTEXT = {
    "help_option_names": ["-h", "--help"],
    "show_default": True,
    "max_content_width": 100,
    "token_normalize_func": _dashes_as_underscores,
}


def quiet_tensorflow(verbose: bool, import_now: bool = True) -> None:
    """Silence TensorFlow's start-up noise (C++ logs, CUDA probing, Keras warnings).

    With import_now, TensorFlow is imported here with stderr sent to /dev/null, since parts of its
    start-up print before any log level is read; a command that may not need it (predict with an
    exported model) passes import_now=False and starts fast.
    """
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", module="keras")
    warnings.filterwarnings("ignore", module="tensorflow")
    if import_now and "tensorflow" not in sys.modules:
        with silenced_stderr():
            import tensorflow  # noqa: F401
    for noisy in ("tensorflow", "tf2onnx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def progress_verbosity(as_json: bool = False) -> int:
    """Keras' progress bar on a terminal; nothing when piped or printing JSON."""
    return 1 if sys.stdout.isatty() and not as_json else 0


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", force=True
    )


def handle_errors(command):
    """Bad input, or a file that cannot be read or written (a missing parent, permission denied,
    a full or read-only disk) -> one line on stderr and exit 2; anything else keeps its
    traceback (exit 1)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as error:
            click.echo(f"error: {error}", err=True)
            raise SystemExit(2) from None
        except OSError as error:
            click.echo(f"error: {describe_os_error(error)}", err=True)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise SystemExit(130) from None

    return wrapper


def describe_os_error(error: OSError) -> str:
    """'PATH: No space left on device; ...' for a failed read or write."""
    where = error.filename or "a file"
    return (f"{where}: {error.strerror or error}; check that this path can be created and "
            "written (permissions, free space, a folder where a file is) and try again")  # fmt: skip


def _split_units(_ctx, _param, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give comma-separated integers, e.g. 128,64") from None


def _explicit(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def build_run_config(ctx: click.Context, options: dict) -> RunConfig:
    """Defaults < --config file < --recipe < options given on the command line."""
    config = RunConfig.load(options["config"]) if options.get("config") else RunConfig()
    recipe = options.get("recipe")
    if recipe:
        from gender_cls.recipes import apply_recipe

        config = apply_recipe(config, recipe)
    only_explicit = bool(options.get("config") or recipe)  # else every default applies too
    sections = {
        "data": config.data,
        "augment": config.augment,
        "model": config.model,
        "train": config.train,
    }
    for section_name, section in sections.items():
        changes = {}
        for f in dataclasses.fields(section):
            if f.name not in options or (options[f.name] is None and f.default is not None):
                continue  # not an option here, or not given (--data_path with --resume)
            if _explicit(ctx, f.name) or not only_explicit:
                changes[f.name] = options[f.name]
        sections[section_name] = dataclasses.replace(section, **changes)
    if options.get("epochs") is not None:
        sections["train"] = _epochs(ctx, options, sections["train"], bool(recipe))
    config = RunConfig(**sections)
    if options.get("no_augment"):
        config.augment = AugmentConfig.off()
    return config


def _epochs(ctx: click.Context, options: dict, train: TrainConfig, recipe: bool) -> TrainConfig:
    """--epochs N: the head phase only, like the seeds; with a recipe, N epochs for each phase
    the recipe trains. --head_epochs/--fine_tune_epochs given as well win."""
    n = options["epochs"]
    head, fine_tune = (n if train.head_epochs else 0, n if train.fine_tune_epochs else 0)
    if not recipe:
        head, fine_tune = n, 0
    for name, value in (("head_epochs", head), ("fine_tune_epochs", fine_tune)):
        if not _explicit(ctx, name):
            train = dataclasses.replace(train, **{name: value})
    return train


def default_run_dir(backbone: str) -> str:
    return f"runs/{backbone.lower()}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _apply_options(command, options: list):
    """Decorate `command` with click options, listed in the order --help shows them."""
    for option in reversed(options):
        command = option(command)
    return command


def train_options(command):
    """Every training option, spelled as the seed scripts spell them (dashed forms too)."""
    d, a, m, t = DataConfig(), AugmentConfig(), ModelConfig(), TrainConfig()
    options = [
        click.option("--data_path", "--data_dir", "data_path",
                     type=click.Path(path_type=str),
                     help="Image folder: train/ val/ [test/] of <class>/ folders, or <class>/ folders."),
        click.option("--output_dir", "output_dir", default=None,
                     help="Run directory to write [default: runs/<backbone>-<time>]."),
        click.option("--output_model", "output_model", default=None,
                     help="Also write the model here (.keras, or legacy .h5), with a .json beside."),
        click.option("--export", type=click.Choice(EXPORTS), default=t.export,
                     help="Also export the model(s) for a fast predict.py (checked against Keras)."),
        click.option("--config", type=click.Path(exists=True, dir_okay=False),
                     help="Load options from a JSON file (as saved in a run's config.json)."),
        click.option("--recipe", default=None, metavar="[" + "|".join(RECIPES) + "]",
                     help="Start from a seed project's whole recipe (see the README's table); "
                          "options given here override it."),
        click.option("--backbone", default=m.backbone,
                     help="mobilenetv2, resnet50, vgg16 or any keras.applications name."),
        click.option("--weights", default=m.weights,
                     help="imagenet (downloads once), none (from scratch) or a local .h5 file."),
        click.option("--alpha", type=float, default=m.alpha, help="MobileNet width multiplier."),
        click.option("--head", type=click.Choice(HEAD_CHOICES), default=m.head,
                     help="Head preset; auto: the backbone's own (ignored with --head_units)."),
        click.option("--head_units", "head_units", callback=_split_units,
                     default="", help="A head of your own: comma-separated Dense sizes, e.g. 128,64."),
        click.option("--dropout", type=float, default=m.dropout, help="Dropout after each Dense of --head_units."),
        click.option("--image_size", "image_size", type=int, default=None,
                     help="Square input size [default: the backbone's, 224]."),
        click.option("--batch_size", "batch_size", type=int, default=d.batch_size),
        click.option("--val_split", "val_split", type=float, default=d.val_split,
                     help="Validation fraction when the data has no val/ folder."),
        click.option("--balance", type=click.Choice(BALANCE_CHOICES), default=d.balance,
                     help="Class imbalance: oversample (every class drawn equally often), "
                          "class_weight (balanced loss weights) or both."),
        click.option("--resize", type=click.Choice(RESIZE_CHOICES), default=d.resize,
                     help="stretch: plain resize; pad: keep the aspect ratio and pad."),
        click.option("--cache/--no-cache", default=d.cache, help="Keep decoded images in memory."),
        click.option("--face_crop/--no-face_crop", default=d.face_crop,
                     help="Detect, align and crop the face of every image first; the model then "
                          "crops faces itself in evaluation and prediction."),
        click.option("--face_detector", type=click.Choice(FACE_DETECTORS), default=d.face_detector,
                     help="blazeface (LiteRT, fast, no TensorFlow) or mtcnn (TensorFlow)."),
        click.option("--face_margin", type=float, default=d.face_margin,
                     help="Context kept around the aligned face, a share of its size per side."),
        click.option("--face_fallback", type=click.Choice(FACE_FALLBACKS),
                     default=d.face_fallback,
                     help="No face found: use the whole image (listed in no_face_found.txt) or "
                          "skip it."),
        click.option("--face_cache", default=None, show_default="RUN/face_cache",
                     help="Folder for the aligned crops (detection runs once per image)."),
        click.option("--seed", type=int, default=d.seed, help="Seeds Python, NumPy and TF."),
        click.option("--epochs", type=int, default=None,
                     help="Shorthand: train the head for N epochs, no fine-tuning (with "
                          "--recipe: N epochs for each phase of the recipe)."),
        click.option("--head_epochs", "head_epochs", type=int,
                     default=t.head_epochs, help="Phase 1: epochs with the base frozen."),
        click.option("--fine_tune_epochs", "fine_tune_epochs", type=int,
                     default=t.fine_tune_epochs, help="Phase 2: epochs with the last layers unfrozen."),
        click.option("--fine_tune_layers", "fine_tune_layers",
                     default=t.fine_tune_layers,
                     help="Layers of the base unfrozen in phase 2: N, auto or all (0 skips it)."),
        click.option("--lr", "--learning_rate", "lr", type=float, default=None,
                     show_default="1e-3; from scratch 3e-3",
                     help="Learning rate of the head phase (of the single phase from scratch)."),
        click.option("--fine_tune_lr", "fine_tune_lr", type=float,
                     default=t.fine_tune_lr),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=t.optimizer,
                     help="sgd uses Nesterov momentum 0.9."),
        click.option("--weight_decay", type=float, default=None,
                     show_default="the optimizer's Keras default (AdamW 0.004, else none)"),
        click.option("--schedule", type=click.Choice(SCHEDULES), default=t.schedule,
                     help="plateau: halve the LR when the monitored value stalls; cosine: "
                          "linear warm-up, then cosine decay to 0 over each phase; auto: cosine "
                          "from scratch, plateau for a pretrained base."),
        click.option("--warmup_epochs", type=int, default=t.warmup_epochs,
                     help="Warm-up of the cosine schedule."),
        click.option("--ema/--no-ema", default=t.ema,
                     help="Validate and keep an exponential moving average of the weights."),
        click.option("--mixup", type=float, default=t.mixup,
                     help="MixUp alpha on each training batch (0 turns it off), e.g. 0.2."),
        click.option("--monitor", type=click.Choice(MONITORS), default=t.monitor,
                     help="What EarlyStopping, ReduceLROnPlateau and best.keras watch; auto: "
                          "val_accuracy from scratch, val_loss when fine-tuning."),
        click.option("--loss", type=click.Choice(LOSSES), default=t.loss,
                     help="bce: binary/categorical cross-entropy; focal: Keras' focal loss."),
        click.option("--focal_alpha", "focal_alpha", type=float,
                     default=t.focal_alpha),
        click.option("--focal_gamma", "focal_gamma", type=float,
                     default=t.focal_gamma),
        click.option("--label_smoothing", "label_smoothing", type=float,
                     default=t.label_smoothing),
        click.option("--patience", type=int, default=None, show_default="5; from scratch 10",
                     help="EarlyStopping patience (ReduceLROnPlateau waits half of it)."),
        click.option("--plateau_factor", type=float, default=t.plateau_factor,
                     help="ReduceLROnPlateau multiplies the learning rate by this."),
        click.option("--threshold_metric", "threshold_metric",
                     type=click.Choice(THRESHOLD_METRICS),
                     default=t.threshold_metric, help="What the tuned decision threshold maximises."),
        click.option("--tensorboard/--no-tensorboard", default=t.tensorboard),
        click.option("--head_augment/--no-head_augment", "head_augment", default=t.head_augment,
                     help="Augment in phase 1; without it the frozen base runs once per image "
                          "and the head trains on cached features (much faster)."),
        click.option("--mixed_precision/--no-mixed_precision", "mixed_precision",
                     default=t.mixed_precision,
                     help="mixed_float16 compute on a GPU (the output stays float32)."),
        click.option("--jit/--no-jit", default=t.jit, help="XLA-compile the training step."),
        click.option("--strategy", type=click.Choice(STRATEGIES),
                     default=t.strategy,
                     help="tf.distribute: auto mirrors over all GPUs when there are several; "
                          "--batch_size is per replica (multiworker: see README)."),
        click.option("--augment_on", "augment_on",
                     type=click.Choice(AUGMENT_PLACEMENTS), default=t.augment_on,
                     help="Where augmentation runs: gpu (in the model, so the CPU only decodes), "
                          "cpu (OpenCV in the input pipeline); auto picks gpu when one is visible."),
        click.option("--rotation_range", "rotation_range", type=float,
                     default=a.rotation_range, help="Degrees."),
        click.option("--zoom_range", "zoom_range", type=float, default=a.zoom_range),
        click.option("--shear_range", "shear_range", type=float,
                     default=a.shear_range, help="Degrees."),
        click.option("--width_shift_range", "width_shift_range", type=float,
                     default=a.width_shift_range, help="Fraction of the width, or pixels if >= 1."),
        click.option("--height_shift_range", "height_shift_range",
                     type=float, default=a.height_shift_range),
        click.option("--horizontal_flip/--no-horizontal_flip", "horizontal_flip",
                     default=a.horizontal_flip, help="Mirror half the images left-right."),
        click.option("--vertical_flip/--no-vertical_flip", "vertical_flip",
                     default=a.vertical_flip, help="Mirror half the images upside down."),
        click.option("--brightness_range", "brightness_range", type=float,
                     nargs=2, default=None, help="Brightness multiplier range, e.g. 0.8 1.2."),
        click.option("--contrast_range", "contrast_range", type=float,
                     default=a.contrast_range),
        click.option("--fill_mode", "fill_mode", type=click.Choice(FILL_MODES),
                     default=a.fill_mode),
        click.option("--saturation_range", type=float, default=a.saturation_range,
                     help="Colour saturation factor drawn in [1 - s, 1 + s]."),
        click.option("--hue_range", type=float, default=a.hue_range,
                     help="Hue shift drawn in [-h, h] degrees."),
        click.option("--grayscale_probability", type=float, default=a.grayscale_probability,
                     help="Share of training images turned grey."),
        click.option("--blur_sigma", type=float, default=a.blur_sigma,
                     help="Gaussian blur with sigma drawn in [0, b] pixels."),
        click.option("--jpeg_quality", type=int, default=a.jpeg_quality,
                     help="Re-encode as JPEG with quality drawn in [q, 95]; 0 turns it off."),
        click.option("--no_augment", "no_augment", is_flag=True,
                     help="Turn every augmentation off."),
        click.option("--resume", is_flag=True,
                     help="Continue the interrupted run in --output_dir with its saved config."),
        click.option("--overwrite", is_flag=True, help="Replace a run already in --output_dir."),
        click.option("--demo", is_flag=True,
                     help="Offline demo: build the direction dataset and train a small model on it."),
        click.option("--json", "as_json", is_flag=True, help="Print the model metadata as JSON."),
        click.option("--show_config", is_flag=True,
                     help="Print the options this run would use (its config.json) and exit."),
        click.option("--verbose", "-v", is_flag=True, help="Show TensorFlow's own logging."),
    ]  # fmt: skip
    return _apply_options(command, options)


DEMO_OPTIONS = {
    "backbone": "mobilenetv2", "alpha": 0.35, "weights": "none", "image_size": 96,
    "epochs": 8, "batch_size": 32, "rotation_range": 5.0, "zoom_range": 0.1,
    "width_shift_range": 0.05, "height_shift_range": 0.05, "horizontal_flip": False,
}  # fmt: skip


def _apply_demo(ctx: click.Context, options: dict) -> None:
    """--demo: build the direction dataset and use small-model settings unless given."""
    from gender_cls.datasets import make_direction_dataset

    for name, value in DEMO_OPTIONS.items():
        if not _explicit(ctx, name):
            options[name] = value
    options["output_dir"] = options["output_dir"] or "runs/demo"
    if not options["data_path"]:
        options["data_path"] = str(Path(tempfile.mkdtemp(prefix="gender_cls_demo_")) / "direction")
    if not Path(options["data_path"]).exists():
        make_direction_dataset(options["data_path"], n_per_class=300, size=96, seed=0)
        click.echo(f"demo: direction dataset written to {options['data_path']}")


@click.command("train", context_settings=CONTEXT)
@train_options
@click.pass_context
@handle_errors
def train_command(ctx: click.Context, **options) -> None:
    """Train an image classifier on a folder of images (two-phase transfer learning).

    \b
    python train_model.py --data_path DATA --output_dir runs/gender-mnv2 \\
        --backbone mobilenetv2 --epochs 25 --batch_size 32
    python train_model.py --demo     # offline, a few minutes on a CPU
    """
    verbose = options.pop("verbose")
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    if options["demo"]:
        _apply_demo(ctx, options)
    if not options["data_path"] and not options["resume"] and not options["config"]:
        raise UserError("no data: pass --data_path DATA (or --demo, --resume, --config FILE)")
    if options["resume"] and not options["output_dir"]:
        raise UserError("--resume needs --output_dir, the run to continue")
    options["output_dir"] = options["output_dir"] or default_run_dir(options["backbone"])
    config = build_run_config(ctx, options)
    if options["show_config"]:
        click.echo(json.dumps(config.to_dict(), indent=2))
        return

    from gender_cls.training import train

    start = time.perf_counter()
    progress = 1 if sys.stdout.isatty() else 2
    result = train(
        config, resume=options["resume"], overwrite=options["overwrite"],
        output_model=options["output_model"], verbose=progress,
    )  # fmt: skip
    if options["as_json"]:
        click.echo(json.dumps(result.card.to_dict(), indent=2, default=str))
        return
    click.echo(f"\ntrained in {time.perf_counter() - start:.0f}s; wrote:")
    for path in result.written:
        click.echo(f"  {path}")
    click.echo(format_validation(result.card))


def format_validation(card: ModelCard) -> str:
    """The validation metrics of a trained model as a few readable lines."""
    report = card.validation
    if card.threshold is None:
        m = report["argmax"]
        return f"validation: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}"
    lines = []
    for key in ("at_0.5", "at_threshold"):
        m = report[key]
        lines.append(
            f"validation @ threshold {m['threshold']:.3f}: accuracy {m['accuracy']:.4f}  "
            f"balanced accuracy {m['balanced_accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}"
        )
    lines.append(f"decision threshold {card.threshold:.3f} ({card.threshold_source})")
    return "\n".join(lines)


def _split_classes(_ctx, _param, value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _split_floats(_ctx, _param, value: str | None) -> tuple[float, ...] | None:
    if not value:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give one number or three, comma-separated") from None


PREDICTOR_OPTIONS = ("classes", "input_scale", "input_mean", "input_std", "bgr", "output",
                     "threshold", "batch_size", "backend", "mixed_precision", "jit", "face_crop")  # fmt: skip


def predictor_options(options: dict) -> dict:
    """The Predictor's keyword arguments among a command's options (removed from `options`)."""
    chosen = {name: options.pop(name) for name in PREDICTOR_OPTIONS}
    from gender_cls.runners import keras_if_asked

    chosen["backend"] = keras_if_asked(chosen["backend"], chosen["mixed_precision"], chosen["jit"])
    return chosen


def _model_options(command):
    options = [
        click.option("--model_path", "--model", "model_path", required=True,
                     help="Run directory, or a .keras/.h5/.tflite/.onnx file (with its .json beside, "
                          "or bare)."),
        click.option("--classes", callback=_split_classes, default=None,
                     help="Bare models only: class names in output order, e.g. female,male."),
        click.option("--input_scale", "input_scale",
                     type=click.Choice(INPUT_SCALES), default=None, show_default="unit",
                     help="Bare models: pixels /255 (unit), 0-255 (raw) or torchvision's ImageNet "
                          "mean/std (imagenet)."),
        click.option("--input_mean", callback=_split_floats, default=None,
                     help="Bare models: subtract this from 0-255 pixels, one value or R,G,B."),
        click.option("--input_std", callback=_split_floats, default=None,
                     help="Bare models: then divide by this, one value or R,G,B."),
        click.option("--bgr", is_flag=True, help="Bare models: feed channels as BGR (OpenCV, "
                                                 "Caffe) instead of RGB."),
        click.option("--output", "output", type=click.Choice(OUTPUT_KINDS), default="auto",
                     help="Bare models: logits get a sigmoid/softmax; auto tells them apart on "
                          "test inputs."),
        click.option("--threshold", type=click.FloatRange(0, 1), default=None,
                     help="Decision threshold on P(second class) [default: the model's tuned one]."),
        click.option("--batch_size", "batch_size", type=int, default=32),
        click.option("--backend", type=click.Choice(["auto", "keras", "tflite", "onnx"]),
                     default="auto", help="auto: the run's TFLite (else ONNX) export when there is "
                     "one (fast start, no TensorFlow), else the Keras model."),
        click.option("--mixed_precision/--no-mixed_precision", "mixed_precision", default=False,
                     help="Keras model on a GPU: mixed_float16 compute (implies --backend keras)."),
        click.option("--jit/--no-jit", default=None, show_default="Keras decides: on with a GPU",
                     help="Keras model: XLA on or off (either implies --backend keras)."),
        click.option("--face_crop/--no-face_crop", default=None,
                     show_default="as the model was trained",
                     help="Crop and align the face of each image first (BlazeFace)."),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout."),
        click.option("--verbose", "-v", is_flag=True, help="Show TensorFlow's own logging."),
    ]  # fmt: skip
    return _apply_options(command, options)


@click.command("evaluate", context_settings=CONTEXT)
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
@click.option(
    "--threshold_metric",
    type=click.Choice(THRESHOLD_METRICS),
    default=None,
    show_default="the one the model was trained with",
    help="What --tune_on maximises.",
)
@click.option(
    "--max_misclassified",
    "max_misclassified",
    type=int,
    default=None,
    help="Copy only the N most confident mistakes [default: all].",
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
@_model_options
@handle_errors
def evaluate_command(data_path, split, output_dir, tune_on, threshold_metric, max_misclassified,
                     face_fallback, groups, face_cache, model_path, as_json, verbose,
                     **options) -> None:  # fmt: skip
    """Evaluate a trained model on a labelled test folder and write a full report.

    \b
    python test_script.py --data_path TEST_DIR --model_path runs/gender-mnv2 \\
        --output_dir evaluation_results
    python test_script.py --model_path runs/gender-mnv2 --split val
    """
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    from gender_cls.evaluation import evaluate, write_outputs

    result = evaluate(
        model_path, data_path, split=split, tune_on=tune_on, threshold_metric=threshold_metric,
        face_fallback=face_fallback, face_cache=face_cache, groups=groups,
        verbose=progress_verbosity(as_json), **predictor_options(options),
    )  # fmt: skip
    for line in result.assumptions:
        click.echo(f"assumed: {line}", err=True)
    if as_json:
        click.echo(json.dumps(result.metrics, indent=2))
    else:  # printed first, so a folder that cannot be written loses nothing
        click.echo(result_summary(result))
    written = write_outputs(result, output_dir, max_misclassified)
    if not as_json:
        click.echo("wrote:\n" + "\n".join(f"  {path}" for path in written))


def result_summary(result) -> str:
    """The report, a line of headline metrics, the per-group table and the mistake count."""
    m = result.metrics
    summary = f"accuracy {m['accuracy']:.4f}  balanced accuracy {m['balanced_accuracy']:.4f}  "
    summary += f"macro-F1 {m['macro_f1']:.4f}"
    if m["roc_auc"] is not None:
        summary += f"  ROC AUC {m['roc_auc']:.4f}"
    parts = [result.full_report(), summary]
    if "groups" in m:
        from gender_cls.fairness import format_report

        parts.append("\n" + format_report(m["groups"], result.class_names))
    parts.append(f"{len(result.misclassified())} of {len(result.paths)} misclassified")
    return "\n".join(parts)


@click.command("predict", context_settings=CONTEXT)
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
@_model_options
@handle_errors
def predict_command(image_paths, more_paths, top_k, save_dir, model_path, as_json, verbose,
                    **options) -> None:  # fmt: skip
    """Predict the class of images (files or folders) with a trained model.

    \b
    python predict.py --image_path photo.jpg --model_path runs/gender-mnv2
    python predict.py --image_path a.jpg b.png some_folder/ --model_path model.keras --json
    """
    paths = list(image_paths) + list(more_paths)
    if not paths:
        raise UserError("no images: pass --image_path FILE_OR_FOLDER")
    from gender_cls.artifacts import resolve_model
    from gender_cls.inference import Predictor
    from gender_cls.runners import exported_file

    chosen = predictor_options(options)
    model = resolve_model(model_path)
    quiet_tensorflow(verbose, import_now=exported_file(model, chosen["backend"]) is None)
    setup_logging(verbose)
    predictor = Predictor(model, **chosen)
    for line in predictor.assumptions:
        click.echo(f"assumed: {line}", err=True)
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
        from gender_cls.annotate import save_annotated

        save_annotated([r for r in results if r.error is None], save_dir)
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


@click.command("export", context_settings=CONTEXT)
@click.option(
    "--model_path",
    "--model",
    "model_path",
    required=True,
    help="Run directory or model.keras with its model.json beside it.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["tflite", "onnx", "savedmodel"]), default="tflite"
)
@click.option(
    "--quantize",
    type=click.Choice(["float16", "int8"]),
    default=None,
    help="TFLite only; int8 calibrates on training images from the run's split.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show TensorFlow's own logging.")
@handle_errors
def export_command(model_path, fmt, quantize, verbose) -> None:
    """Export a trained model (checked against Keras) and record it in model.json.

    predict.py and test_script.py then use the export by default (--backend auto), TFLite
    before ONNX; a .tflite or .onnx file can also be passed as --model_path.
    """
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    from gender_cls.export import export_model

    record = export_model(model_path, fmt, quantize)
    line = f"exported {record['file']} ({fmt}{', ' + quantize if quantize else ''})"
    if "max_abs_diff_vs_keras" in record:
        line += f"; largest output difference vs Keras {record['max_abs_diff_vs_keras']:.2e}"
    click.echo(line)


@click.command("crop-faces", context_settings=CONTEXT)
@click.argument("src", type=click.Path(path_type=str))
@click.argument("dst", type=click.Path(path_type=str))
@click.option("--size", type=click.IntRange(16), default=224, help="Side of each square crop.")
@click.option("--face_detector", type=click.Choice(FACE_DETECTORS), default="blazeface")
@click.option("--face_margin", type=click.FloatRange(0, 1), default=0.25,
              help="Context kept around the aligned face, a share of its size per side.")  # fmt: skip
@click.option("--face_fallback", type=click.Choice(FACE_FALLBACKS), default="full",
              help="No face found: write the whole image resized, or nothing.")  # fmt: skip
@click.option("--verbose", "-v", is_flag=True, help="Show TensorFlow's own logging.")
@handle_errors
def crop_faces_command(src, dst, size, face_detector, face_margin, face_fallback, verbose) -> None:
    """Write the aligned face of every image under SRC to the same place under DST (PNG).

    \b
    gender-cls crop-faces photos/ photos_faces/ --size 224
    """
    quiet_tensorflow(verbose, import_now=face_detector == "mtcnn")
    setup_logging(verbose)
    from gender_cls.config import FaceCrop
    from gender_cls.faces import crop_tree

    start = time.perf_counter()
    report = crop_tree(src, dst, FaceCrop(face_detector, face_margin), size, face_fallback)
    seconds = time.perf_counter() - start
    total = report.found + len(report.no_face) + len(report.unreadable)
    click.echo(f"{report.summary()}; {total / seconds:.1f} images/s; wrote {dst}")
    for path, reason in report.unreadable:
        click.echo(f"error  {path}: cannot read image ({reason})", err=True)
    if report.unreadable:
        raise SystemExit(1)


@click.group(context_settings=CONTEXT)
def main() -> None:
    """gender_cls: train, evaluate and use image classifiers."""


for command in (train_command, evaluate_command, predict_command, export_command,
                crop_faces_command):  # fmt: skip
    main.add_command(command)
