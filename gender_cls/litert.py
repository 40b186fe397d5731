"""LiteRT interpreters for .tflite files, without TensorFlow: exported models and BlazeFace share
this."""

from __future__ import annotations

import os
from pathlib import Path

from gender_cls.errors import UserError


def lite_interpreter(path: str | Path, threads: int | None = None):
    """A LiteRT interpreter for a .tflite file (no TensorFlow), on `threads` or every core."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # only for .tflite models
    except ImportError:
        raise UserError(
            "running .tflite models needs ai-edge-litert: pip install ai-edge-litert"
        ) from None
    try:
        return Interpreter(model_path=str(path), num_threads=threads or os.cpu_count() or 1)
    except (ValueError, RuntimeError) as error:
        raise UserError(f"{path}: not a readable TFLite model ({error})") from None
