"""Run exported models without importing TensorFlow (fast cold start): .tflite with LiteRT,
.onnx with onnxruntime. Both have the Keras runner's predict()."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gender_cls.errors import UserError


class _BatchedRunner:
    """predict() in batches over `_run`, which subclasses implement for one batch."""

    batch_size: int
    output_units: int

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Model outputs for float32 pixels [N, H, W, 3], in batches."""
        images = np.asarray(images, np.float32)
        parts = [
            self._run(images[i : i + self.batch_size])
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.output_units), np.float32)


class LiteRunner(_BatchedRunner):
    """A LiteRT interpreter."""

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


class OnnxRunner(_BatchedRunner):
    """An onnxruntime inference session on the CPU."""

    def __init__(self, path: str | Path, batch_size: int = 32):
        try:
            import onnxruntime
        except ImportError:
            raise UserError(
                "running .onnx models needs onnxruntime: pip install onnxruntime"
            ) from None
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            reason = str(error).splitlines()[0][:200]
            raise UserError(f"{path}: not a readable ONNX model ({reason})") from None
        self.batch_size = batch_size
        self._input = self.session.get_inputs()[0]
        self.input_shape = tuple(v if isinstance(v, int) else None for v in self._input.shape)
        self.output_units = int(self.session.get_outputs()[0].shape[-1])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        (output,) = self.session.run(None, {self._input.name: batch})
        return np.asarray(output, np.float32)


EXPORT_RUNNERS = {".tflite": LiteRunner, ".onnx": OnnxRunner}


def open_exported(path: Path, batch_size: int = 32) -> _BatchedRunner:
    """The runner for an exported model file, chosen by its suffix."""
    return EXPORT_RUNNERS[path.suffix.lower()](path, batch_size)
