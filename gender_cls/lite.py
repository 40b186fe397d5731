"""Run an exported .tflite model with LiteRT, without importing TensorFlow (fast cold start)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gender_cls.errors import UserError


class LiteRunner:
    """A LiteRT interpreter with the same predict() as the Keras runner."""

    def __init__(self, path: str | Path, batch_size: int = 32):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise UserError(
                "running .tflite models needs ai-edge-litert: pip install ai-edge-litert"
            ) from None
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
        except (ValueError, RuntimeError) as error:
            raise UserError(f"{path}: not a readable TFLite model ({error})") from None
        self.batch_size = batch_size
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.input_shape = tuple(int(v) if v > 0 else None for v in self._input["shape_signature"])
        self.output_units = int(self._output["shape"][-1])
        self._batch = None

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._batch != len(batch):
            self.interpreter.resize_tensor_input(self._input["index"], batch.shape)
            self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self._input["index"], batch.astype(self._input["dtype"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).astype(np.float32)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Model outputs for float32 pixels [N, H, W, 3], in batches."""
        images = np.asarray(images, np.float32)
        parts = [
            self._run(images[i : i + self.batch_size])
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.output_units), np.float32)
