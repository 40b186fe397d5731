"""What every command shares: context settings, logging, error handling, option callbacks."""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import warnings

import rich_click as click

from gender_cls.config import THRESHOLD_METRICS
from gender_cls.data.images import DEFAULT_MAX_PIXELS, MAX_PIXELS_VARIABLE
from gender_cls.errors import UserError, silenced_stderr


class Finite(click.FloatRange):
    """A float option (in a range, when given) that refuses nan and inf, which float() and
    FloatRange take and which would train a model to nothing."""

    name = "number"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        return "finite" if self.min is None and self.max is None else super()._describe_range()


def _dashes_as_underscores(token: str) -> str:
    """--data-path and --data_path are one option (and so are dashed and underscored choices)."""
    return token.replace("-", "_")


CONTEXT = {
    "help_option_names": ["-h", "--help"],
    "show_default": True,
    "max_content_width": 100,
    "token_normalize_func": _dashes_as_underscores,
    "rich_help_config": {"max_width": 100},
}


def option_panels(panels: dict[str, list[str]]):
    """Group a command's options in --help: {panel title: [option names]}, in that order."""

    def decorate(command):
        for title, names in reversed(panels.items()):
            command = click.option_panel(title, options=names)(command)
        return command

    return decorate


def quiet_tensorflow(verbose: bool, import_now: bool = True) -> None:
    """Silence TensorFlow's start-up noise (C++ logs, CUDA probing, Keras warnings).

    With import_now, TensorFlow is imported here with stderr sent to /dev/null, since parts of its
    start-up print before any log level is read; a command that may not need it (predict with an
    exported model) passes import_now=False and starts fast.
    """
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    warnings.filterwarnings("ignore", module="keras")
    warnings.filterwarnings("ignore", module="tensorflow")
    if import_now and "tensorflow" not in sys.modules:
        with silenced_stderr():
            import tensorflow  # noqa: F401
    for noisy in ("tensorflow", "tf2onnx", "absl", "jax._src.xla_bridge"):
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


def split_units(_ctx, _param, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give comma-separated integers, e.g. 128,64") from None


def explicit(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def _set_max_pixels(_ctx, _param, value: int | None) -> None:
    """Through the environment, so the tf.data workers and child processes see it too."""
    if value is not None:
        os.environ[MAX_PIXELS_VARIABLE] = str(value)


MAX_PIXELS_OPTION = click.option(
    "--max_pixels", type=click.IntRange(min=1), default=None, expose_value=False, is_eager=True,
    callback=_set_max_pixels, show_default=f"{DEFAULT_MAX_PIXELS:,}, or ${MAX_PIXELS_VARIABLE}",
    help="Refuse an image of more pixels (width x height) than this before decoding it; raise "
    "it for very large photos (decoding costs about 4 bytes a pixel).",
)  # fmt: skip

RAY_ADDRESS_OPTION = click.option(
    "--ray_address", default=None, show_default="a new local Ray cluster",
    help="--engine ray: an existing cluster (auto, or ray://HOST:10001).",
)  # fmt: skip

VERBOSE_OPTION = click.option("--verbose", "-v", is_flag=True,
                              help="Show TensorFlow's own logging.")  # fmt: skip


def model_path_option(help_text: str):
    """The required --model_path (alias --model) that names what a command reads."""
    return click.option("--model_path", "--model", "model_path", required=True, help=help_text)


def threshold_metric_option(help_text: str):
    """--threshold_metric for a command that re-tunes the threshold; default: the model's own."""
    return click.option("--threshold_metric", type=click.Choice(THRESHOLD_METRICS), default=None,
                        show_default="the one the model was trained with", help=help_text)  # fmt: skip


def apply_options(command, options: list):
    """Decorate `command` with click options, listed in the order --help shows them."""
    for option in reversed(options):
        command = option(command)
    return command


def split_classes(_ctx, _param, value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def split_floats(_ctx, _param, value: str | None) -> tuple[float, ...] | None:
    if not value:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give one number or three, comma-separated") from None


def format_calibration(report: dict) -> str:
    """'temperature 2.31: ECE 0.081 -> 0.023, Brier 0.071 -> 0.062 (validation)'."""
    c = report["calibration"]
    line = (f"temperature {report['temperature']:.3f}: ECE {c['ece_before']:.4f} -> "
            f"{c['ece_after']:.4f}, Brier {c['brier_before']:.4f} -> {c['brier_after']:.4f} "
            "(validation set)")  # fmt: skip
    if report["threshold"] is not None:
        line += f"; threshold re-tuned to {report['threshold']:.3f}"
    return line
