"""train_model.py / gender-cls train: the training options and the command."""

from __future__ import annotations

import functools
import json
import logging
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import rich_click as click

from gender_cls.artifacts.card import KERAS_SUFFIXES, ModelCard
from gender_cls.cli.common import (
    CONTEXT,
    VERBOSE_OPTION,
    Finite,
    apply_options,
    explicit,
    format_calibration,
    handle_errors,
    option_panels,
    quiet_tensorflow,
    setup_logging,
    split_units,
)
from gender_cls.config import (
    AUGMENT_PLACEMENTS,
    BALANCE_CHOICES,
    EXPORTS,
    FACE_DETECTORS,
    FACE_FALLBACKS,
    FACE_TEMPLATES,
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
from gender_cls.errors import UserError
from gender_cls.training import multihost
from gender_cls.training.recipes import RECIPES

log = logging.getLogger(__name__)


def _learning_rate(_ctx, _param, value: str | None) -> float | str | None:
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter("give a number, e.g. 3e-3, or auto") from None


def _keras_file(_ctx, _param, value: str | None) -> str | None:
    """--output_model must name a Keras model file, checked before any training."""
    if value and Path(value).suffix.lower() not in KERAS_SUFFIXES:
        raise click.BadParameter(f"{value}: name a .keras (or legacy .h5) file")
    return value


def cli_run_config(ctx: click.Context, options: dict, filled: tuple[str, ...] = ()) -> RunConfig:
    """The run the command line describes: the flags given count as given, and so do the
    options this command `filled` in itself (the demo's data, the default run folder)."""
    from gender_cls.training.options import run_config  # loaded on use: a fast start-up

    given = {name for name in options if explicit(ctx, name)} | set(filled)
    return run_config(options, given)


def default_run_dir(backbone: str) -> str:
    return f"runs/{backbone.lower()}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def train_options(command):
    """Every training option, spelled as the seed scripts spell them (dashed forms too)."""
    d, a, m, t = DataConfig(), AugmentConfig(), ModelConfig(), TrainConfig()
    options = [
        click.option("--data_path", "--data_dir", "data_path",
                     type=click.Path(path_type=str),
                     help="Image folder: train/ val/ [test/] of <class>/ folders, or <class>/ folders."),
        click.option("--output_dir", "output_dir", default=None,
                     help="Run directory to write [default: runs/<backbone>-<time>]."),
        click.option("--output_model", "output_model", default=None, callback=_keras_file,
                     help="Also write the model here (.keras, or legacy .h5), with a .json beside."),
        click.option("--export", type=click.Choice(EXPORTS), default=t.export,
                     help="Also export the model(s) for a fast predict.py (checked against Keras)."),
        click.option("--config", type=click.Path(exists=True, dir_okay=False),
                     help="Load options from a JSON file (as saved in a run's config.json)."),
        click.option("--recipe", default=None, metavar="[" + "|".join(RECIPES) + "]",
                     help="Start from a named recipe: a seed project's, faces-offline (faces, "
                          "crops or photos) or faces-lite0 (see the README's table); options "
                          "given here override it."),
        click.option("--backbone", default=m.backbone,
                     help="mobilenetv2, resnet50, vgg16, efficientnet_lite0/1/2 (ImageNet "
                          "weights offline, from pip packages), dlib_face_resnet (dlib's face "
                          "embedding, offline) or any keras.applications name."),
        click.option("--weights", default=m.weights,
                     help="imagenet: the backbone's pretrained weights (downloaded once; "
                          "installed with efficientnet_lite* and dlib_face_resnet), none (from "
                          "scratch) or a local .h5 file."),
        click.option("--alpha", type=Finite(), default=m.alpha, help="MobileNet width multiplier."),
        click.option("--head", type=click.Choice(HEAD_CHOICES), default=m.head,
                     help="Head preset; auto: the backbone's own (ignored with --head_units)."),
        click.option("--head_units", "head_units", callback=split_units,
                     default="", help="A head of your own: comma-separated Dense sizes, e.g. 128,64."),
        click.option("--dropout", type=Finite(), default=m.dropout, help="Dropout after each Dense of --head_units."),
        click.option("--image_size", "image_size", type=int, default=None,
                     help="Square input size [default: the backbone's, 224]."),
        click.option("--batch_size", "batch_size", type=int, default=d.batch_size,
                     help="Images per batch (per GPU with several)."),
        click.option("--val_split", "val_split", type=Finite(), default=d.val_split,
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
        click.option("--face_margin", type=Finite(), default=d.face_margin,
                     help="Context kept around the aligned face, a share of its size per side."),
        click.option("--face_template", type=click.Choice(FACE_TEMPLATES),
                     default=d.face_template,
                     help="Where the face is put: arcface (ArcFace's template) or dlib (dlib's "
                          "chips); auto: the backbone's own (dlib for dlib_face_resnet)."),
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
        click.option("--lr", "--learning_rate", "lr", callback=_learning_rate, default=None,
                     show_default="1e-3; from scratch 3e-3",
                     help="Learning rate of the head phase (of the single phase from scratch); "
                          "auto: the range test's suggestion (see gender-cls find-lr)."),
        click.option("--fine_tune_lr", "fine_tune_lr", type=Finite(),
                     default=t.fine_tune_lr, help="Learning rate of phase 2 (fine-tuning)."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=t.optimizer,
                     help="sgd uses Nesterov momentum 0.9."),
        click.option("--weight_decay", type=Finite(), default=None,
                     show_default="the optimizer's Keras default (AdamW 0.004, else none)",
                     help="Weight decay of the optimizer."),
        click.option("--schedule", type=click.Choice(SCHEDULES), default=t.schedule,
                     help="plateau: halve the LR when the monitored value stalls; cosine: "
                          "linear warm-up, then cosine decay to 0 over each phase; auto: cosine "
                          "from scratch, plateau for a pretrained base."),
        click.option("--warmup_epochs", type=int, default=t.warmup_epochs,
                     help="Warm-up of the cosine schedule."),
        click.option("--ema/--no-ema", default=t.ema,
                     help="Validate and keep an exponential moving average of the weights."),
        click.option("--mixup", type=Finite(), default=t.mixup,
                     help="MixUp alpha on each training batch (0 turns it off), e.g. 0.2."),
        click.option("--monitor", type=click.Choice(MONITORS), default=t.monitor,
                     help="What EarlyStopping, ReduceLROnPlateau and best.keras watch; auto: "
                          "val_accuracy from scratch, val_loss when fine-tuning."),
        click.option("--loss", type=click.Choice(LOSSES), default=t.loss,
                     help="bce: binary/categorical cross-entropy; focal: Keras' focal loss."),
        click.option("--focal_alpha", "focal_alpha", type=Finite(),
                     default=t.focal_alpha, help="Focal loss: weight of the positive class."),
        click.option("--focal_gamma", "focal_gamma", type=Finite(),
                     default=t.focal_gamma, help="Focal loss: focusing exponent (0 is cross-entropy)."),
        click.option("--label_smoothing", "label_smoothing", type=Finite(),
                     default=t.label_smoothing, help="Soften the targets towards uniform by this much."),
        click.option("--patience", type=int, default=None, show_default="5; from scratch 10",
                     help="EarlyStopping patience (ReduceLROnPlateau waits half of it)."),
        click.option("--plateau_factor", type=Finite(), default=t.plateau_factor,
                     help="ReduceLROnPlateau multiplies the learning rate by this."),
        click.option("--threshold_metric", "threshold_metric",
                     type=click.Choice(THRESHOLD_METRICS),
                     default=t.threshold_metric, help="What the tuned decision threshold maximises."),
        click.option("--calibrate/--no-calibrate", default=t.calibrate,
                     help="Fit temperature scaling on the validation set after training; the "
                          "threshold is tuned on the calibrated probabilities."),
        click.option("--tensorboard/--no-tensorboard", default=t.tensorboard,
                     help="Write TensorBoard logs to RUN/logs."),
        click.option("--head_augment/--no-head_augment", "head_augment", default=t.head_augment,
                     help="Augment in phase 1; without it the frozen base runs once per image "
                          "and the head trains on cached features (much faster)."),
        click.option("--mixed_precision/--no-mixed_precision", "mixed_precision",
                     default=t.mixed_precision,
                     help="mixed_float16 compute on a GPU (the output stays float32)."),
        click.option("--jit/--no-jit", default=t.jit, help="XLA-compile the training step (always on with KERAS_BACKEND=jax)."),
        click.option("--strategy", type=click.Choice(STRATEGIES),
                     default=t.strategy,
                     help="tf.distribute: auto mirrors over all GPUs when there are several; "
                          "--batch_size is per replica (multiworker: see README)."),
        click.option("--augment_on", "augment_on",
                     type=click.Choice(AUGMENT_PLACEMENTS), default=t.augment_on,
                     help="Where augmentation runs: gpu (in the model, so the CPU only decodes), "
                          "cpu (OpenCV in the input pipeline); auto picks gpu when one is visible."),
        click.option("--rotation_range", "rotation_range", type=Finite(),
                     default=a.rotation_range, help="Degrees."),
        click.option("--zoom_range", "zoom_range", type=Finite(), default=a.zoom_range,
                     help="Zoom factor drawn in [1 - z, 1 + z] per axis."),
        click.option("--shear_range", "shear_range", type=Finite(),
                     default=a.shear_range, help="Degrees."),
        click.option("--width_shift_range", "width_shift_range", type=Finite(),
                     default=a.width_shift_range, help="Fraction of the width, or pixels if >= 1."),
        click.option("--height_shift_range", "height_shift_range",
                     type=Finite(), default=a.height_shift_range,
                     help="Fraction of the height, or pixels if >= 1."),
        click.option("--horizontal_flip/--no-horizontal_flip", "horizontal_flip",
                     default=a.horizontal_flip, help="Mirror half the images left-right."),
        click.option("--vertical_flip/--no-vertical_flip", "vertical_flip",
                     default=a.vertical_flip, help="Mirror half the images upside down."),
        click.option("--brightness_range", "brightness_range", type=Finite(),
                     nargs=2, default=None, help="Brightness multiplier range, e.g. 0.8 1.2."),
        click.option("--contrast_range", "contrast_range", type=Finite(),
                     default=a.contrast_range, help="Contrast factor drawn in [1 - c, 1 + c]."),
        click.option("--fill_mode", "fill_mode", type=click.Choice(FILL_MODES),
                     default=a.fill_mode, help="How a warp fills pixels from outside the image."),
        click.option("--saturation_range", type=Finite(), default=a.saturation_range,
                     help="Colour saturation factor drawn in [1 - s, 1 + s]."),
        click.option("--hue_range", type=Finite(), default=a.hue_range,
                     help="Hue shift drawn in [-h, h] degrees."),
        click.option("--grayscale_probability", type=Finite(), default=a.grayscale_probability,
                     help="Share of training images turned grey."),
        click.option("--blur_sigma", type=Finite(), default=a.blur_sigma,
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
        VERBOSE_OPTION,
    ]  # fmt: skip
    return apply_options(command, options)


DEMO_OPTIONS = {
    "backbone": "mobilenetv2", "alpha": 0.35, "weights": "none", "image_size": 96,
    "epochs": 8, "batch_size": 32, "rotation_range": 5.0, "zoom_range": 0.1,
    "width_shift_range": 0.05, "height_shift_range": 0.05, "horizontal_flip": False,
}  # fmt: skip


def _apply_demo(ctx: click.Context, options: dict) -> tuple[str, ...]:
    """--demo: build the direction dataset and use small-model settings unless given (a recipe
    wins over these); returns the options it filled that a recipe must not undo."""
    from gender_cls.data.demo import make_direction_dataset  # loaded on use: a fast start-up

    for name, value in DEMO_OPTIONS.items():
        if not explicit(ctx, name):
            options[name] = value
    options["output_dir"] = options["output_dir"] or "runs/demo"
    if not options["data_path"]:
        options["data_path"] = str(Path(tempfile.mkdtemp(prefix="gender_cls_demo_")) / "direction")
    if not Path(options["data_path"]).exists():
        make_direction_dataset(options["data_path"], n_per_class=300, size=96, seed=0)
        click.echo(f"demo: direction dataset written to {options['data_path']}")
    return ("data_path", "output_dir")


TRAIN_PANELS = {
    "Data": ["data_path", "image_size", "batch_size", "val_split", "balance", "resize", "cache",
             "seed", "max_pixels"],
    "Faces": ["face_crop", "face_detector", "face_margin", "face_template", "face_fallback",
              "face_cache"],
    "Model": ["backbone", "weights", "alpha", "head", "head_units", "dropout"],
    "Training": ["recipe", "config", "epochs", "head_epochs", "fine_tune_epochs",
                 "fine_tune_layers", "lr", "fine_tune_lr", "optimizer", "weight_decay",
                 "schedule", "warmup_epochs", "plateau_factor", "ema", "mixup", "monitor",
                 "patience", "loss", "focal_alpha", "focal_gamma", "label_smoothing",
                 "threshold_metric", "calibrate"],
    "Augmentation": ["rotation_range", "zoom_range", "shear_range", "width_shift_range",
                     "height_shift_range", "horizontal_flip", "vertical_flip", "brightness_range",
                     "contrast_range", "fill_mode", "saturation_range", "hue_range",
                     "grayscale_probability", "blur_sigma", "jpeg_quality", "no_augment"],
    "Speed": ["head_augment", "mixed_precision", "jit", "strategy", "augment_on"],
    "Several processes (JAX)": ["coordinator", "num_processes", "process_id", "peer_timeout"],
    "Output": ["output_dir", "output_model", "export", "tensorboard", "resume", "overwrite",
               "demo", "as_json", "show_config", "verbose", "help"],
}  # fmt: skip


CLUSTER_OPTIONS = [
    click.option("--coordinator", default=None, metavar="HOST:PORT",
                 show_default=f"${multihost.ENV_ADDRESSES}",
                 help="Process 0's address, where every process meets (KERAS_BACKEND=jax)."),
    click.option("--num_processes", type=click.IntRange(min=1), default=None,
                 show_default=f"${multihost.ENV_COUNT}, else 1",
                 help="Processes training together, one or more per machine; --batch_size is "
                      "per process."),
    click.option("--process_id", type=click.IntRange(min=0), default=None,
                 show_default=f"${multihost.ENV_ID}",
                 help="This process's number, 0 to N-1; process 0 writes the run."),
    click.option("--peer_timeout", type=click.IntRange(min=5), default=60,
                 help="Seconds to wait for the other processes to start, and before the others "
                      "stop when one dies."),
]  # fmt: skip


@click.command("train", context_settings=CONTEXT)
@option_panels(TRAIN_PANELS)
@train_options
@functools.partial(apply_options, options=CLUSTER_OPTIONS)
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
    cluster = multihost.cluster_from(options.pop("coordinator"), options.pop("num_processes"),
                                     options.pop("process_id"))  # fmt: skip
    peer_timeout = options.pop("peer_timeout")
    if cluster is not None:  # before anything starts JAX on this process alone
        multihost.join(cluster, peer_timeout)
    filled = _apply_demo(ctx, options) if options["demo"] else ()
    if not options["data_path"] and not options["resume"] and not options["config"]:
        raise UserError("no data: pass --data_path DATA (or --demo, --resume, --config FILE)")
    if options["resume"] and not options["output_dir"]:
        raise UserError("--resume needs --output_dir, the run to continue")
    if not options["output_dir"] and not options["config"]:  # a config file names its own
        options["output_dir"] = default_run_dir(options["backbone"])
        filled += ("output_dir",)
    config = cli_run_config(ctx, options, filled)
    if options["resume"]:
        from gender_cls.training.options import ignored_on_resume  # loaded on use

        ignored = ignored_on_resume([name for name in options if explicit(ctx, name)])
        if ignored:
            log.warning("--resume continues the run as its config.json says; ignored: %s",
                        ", ".join(f"--{name}" for name in ignored))  # fmt: skip
    if options["show_config"]:
        click.echo(json.dumps(config.to_dict(), indent=2))
        return

    from gender_cls.training.run import train  # imports TensorFlow: loaded on use

    start = time.perf_counter()
    progress = 1 if sys.stdout.isatty() else 2
    if cluster is not None and not cluster.is_writer:
        progress = 0
    result = train(
        config, resume=options["resume"], overwrite=options["overwrite"],
        output_model=options["output_model"], verbose=progress, cluster=cluster,
    )  # fmt: skip
    if result is None:
        click.echo(f"process {cluster.process_id}: trained with process 0, which wrote "
                   f"{config.train.output_dir}")  # fmt: skip
        return
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
    lines = []
    if "calibration" in report:
        lines.append(format_calibration(report))
    if card.threshold is None:
        m = report["argmax"]
        lines.append(f"validation: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}")
        return "\n".join(lines)
    for key in ("at_0.5", "at_threshold"):
        m = report[key]
        lines.append(
            f"validation @ threshold {m['threshold']:.3f}: accuracy {m['accuracy']:.4f}  "
            f"balanced accuracy {m['balanced_accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}"
        )
    lines.append(f"decision threshold {card.threshold:.3f} ({card.threshold_source})")
    return "\n".join(lines)


@click.command("find-lr", context_settings=CONTEXT)
@option_panels(TRAIN_PANELS)
@train_options
@click.pass_context
@handle_errors
def find_lr_command(ctx: click.Context, **options) -> None:
    """Learning-rate range test: the training options of train_model.py, an exponentially
    growing learning rate over 100 batches, lr_finder.png and the suggested rate in --output_dir.

    \b
    gender-cls find-lr --data_path DATA --output_dir runs/lr --weights none --image_size 96
    """
    verbose = options.pop("verbose")
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    if not options["data_path"]:
        raise UserError("no data: pass --data_path DATA")
    filled = ()
    if not options["output_dir"] and not options["config"]:
        options["output_dir"] = default_run_dir(options["backbone"]) + "-lr"
        filled = ("output_dir",)
    config = cli_run_config(ctx, options, filled)

    from gender_cls.training.lr_finder import find_lr  # imports TensorFlow: loaded on use

    sweep = find_lr(config, config.train.output_dir)
    click.echo(f"suggested learning rate {sweep.suggestion:.3g} (swept {sweep.lrs[0]:.0e} to "
               f"{sweep.lrs[-1]:.1e} over {len(sweep.lrs)} batches); wrote "
               f"{Path(config.train.output_dir) / 'lr_finder.png'}")  # fmt: skip
