"""Click commands, one module per command. They parse options and call the library;
train_model.py, test_script.py and predict.py are thin wrappers around them. Exit codes: 0 ok,
1 runtime failure, 2 bad input."""

from __future__ import annotations

import rich_click as click

from gender_cls.cli.common import CONTEXT, MAX_PIXELS_OPTION
from gender_cls.cli.evaluate import evaluate_command
from gender_cls.cli.predict import predict_command
from gender_cls.cli.serve import serve_command
from gender_cls.cli.tools import (
    calibrate_command,
    crop_faces_command,
    distort_command,
    export_command,
)
from gender_cls.cli.train import find_lr_command, train_command
from gender_cls.cli.verify import (
    embed_command,
    evaluate_verifier_command,
    train_verifier_command,
    verify_command,
)

__all__ = ["main", "train_command", "evaluate_command", "predict_command", "export_command",
           "crop_faces_command", "calibrate_command", "find_lr_command", "distort_command", "train_verifier_command",
           "verify_command", "evaluate_verifier_command", "embed_command", "serve_command"]  # fmt: skip


@click.group(context_settings=CONTEXT)
def main() -> None:
    """gender_cls: train, evaluate and use image classifiers."""


for command in (train_command, evaluate_command, predict_command, export_command,
                crop_faces_command, calibrate_command, find_lr_command, distort_command,
                train_verifier_command, verify_command, evaluate_verifier_command, embed_command,
                serve_command):  # fmt: skip
    MAX_PIXELS_OPTION(command)  # every command reads images, export's int8 calibration too
    main.add_command(command)
