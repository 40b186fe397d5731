"""Runners: one small interface over a Keras model, a TFLite file (LiteRT) and an ONNX file
(onnxruntime). The exported ones run without importing TensorFlow, for a fast cold start."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from gender_cls.artifacts.card import ModelRef
from gender_cls.artifacts.keras_archive import check_keras_archive
from gender_cls.errors import UserError, first_line, silenced_stderr
from gender_cls.litert import lite_interpreter


class Runner(Protocol):
    """What prediction needs from a loaded model."""

    input_shape: tuple  # (batch, height, width, channels), None where dynamic
    output_units: int

    def predict(self, images) -> np.ndarray:
        """Model outputs for float32 pixels [N, H, W, 3] (a Keras runner also takes a dataset)."""
        ...


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


def check_classifier(path, inputs: list[tuple], outputs: list[tuple]) -> None:
    """One image input ([N, H, W, C] or [N, C, H, W]) and one [N, classes] output, or a
    one-line UserError: a detector or a landmark model is not classified by accident."""
    if len(inputs) != 1 or len(inputs[0]) != 4:
        shapes = ", ".join(str(list(s)) for s in inputs)
        raise UserError(f"{path}: inputs {shapes}; a classifier takes one batch of images "
                        "[N, H, W, 3] (or [N, 3, H, W])")  # fmt: skip
    if len(outputs) != 1 or len(outputs[0]) != 2:
        shapes = ", ".join(str(list(s)) for s in outputs)
        raise UserError(f"{path}: outputs {shapes}; a classifier gives one [N, classes] output "
                        "(this looks like a detector or another kind of model)")  # fmt: skip


class LiteRunner(_BatchedRunner):
    """A LiteRT interpreter."""

    def __init__(self, path: str | Path, batch_size: int = 32):
        self.interpreter = lite_interpreter(path)
        self.batch_size = batch_size
        inputs, outputs = (
            self.interpreter.get_input_details(),
            self.interpreter.get_output_details(),
        )
        check_classifier(path, [tuple(d["shape"].tolist()) for d in inputs],
                         [tuple(d["shape"].tolist()) for d in outputs])  # fmt: skip
        self._input, self._output = inputs[0], outputs[0]
        self.input_shape = tuple(int(v) if v > 0 else None for v in self._input["shape_signature"])
        self.output_units = int(self._output["shape"][-1])
        self._batch = None

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._batch != len(batch):
            self.interpreter.resize_tensor_input(self._input["index"], batch.shape)
            with silenced_stderr():  # LiteRT announces its XNNPACK delegate here
                self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self._input["index"], batch.astype(self._input["dtype"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).astype(np.float32)


class OnnxRunner(_BatchedRunner):
    """An onnxruntime inference session on the CPU."""

    def __init__(self, path: str | Path, batch_size: int = 32):
        try:
            import onnxruntime  # only for .onnx models
        except ImportError:
            raise UserError(
                "running .onnx models needs onnxruntime: pip install onnxruntime"
            ) from None
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            raise UserError(
                f"{path}: not a readable ONNX model ({first_line(error, 200)})"
            ) from None
        self.batch_size = batch_size
        check_classifier(path, [tuple(i.shape) for i in self.session.get_inputs()],
                         [tuple(o.shape) for o in self.session.get_outputs()])  # fmt: skip
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


def load_keras_model(path: Path):
    """A Keras model loaded for inference (compile=False: a custom training loss is not needed)."""
    import keras  # TensorFlow, only when used

    if Path(path).suffix.lower() == ".keras":
        check_keras_archive(Path(path))
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # corrupt zip/HDF5, unknown layers, wrong format: all the same
        raise UserError(
            f"{path}: not a readable Keras model ({first_line(error, 200)}); pass a model.keras/.h5 saved by "
            "Keras or a run directory from train_model.py"
        ) from None


class KerasRunner:
    """A Keras model: `mixed_precision` rebuilds a gender_cls model with mixed_float16 compute (on
    a GPU); `jit` True/False turns XLA on/off (None: Keras decides, which means on with a GPU)."""

    def __init__(
        self,
        model: ModelRef,
        batch_size: int = 32,
        mixed_precision: bool = False,
        jit: bool | None = None,
    ):
        self.model = load_keras_model(model.file)
        if mixed_precision:
            self.model = _mixed_precision_copy(self.model, model)
        if jit is not None:
            self.model.jit_compile = jit
        self.batch_size = batch_size
        shape = self.model.input_shape
        self.input_shape = tuple(shape[0] if isinstance(shape, list) else shape)
        self.output_units = int(self.model.output_shape[-1])

    def predict(self, images, verbose: int = 0) -> np.ndarray:
        return self.model.predict(images, batch_size=self.batch_size, verbose=verbose)


def _mixed_precision_copy(keras_model, model: ModelRef):
    """The model rebuilt from its run's config with mixed_float16 compute and its weights."""
    from gender_cls.models.classifier import copy_classifier  # imports TensorFlow: only when used

    card = model.card
    if card is None or card.config is None:
        raise UserError(f"{model.file}: --mixed_precision needs a model trained by gender_cls "
                        "(its model.json holds the architecture); leave it out for this model")  # fmt: skip
    classes = len(card.class_names)
    return copy_classifier(keras_model, card.config.model, classes, card.image_size, mixed=True)


def exported_file(model: ModelRef, backend: str = "auto") -> Path | None:
    """The exported model to run, else None (Keras): the file itself when it is an export; the
    run's export of `backend` ("tflite"/"onnx"); with "auto", its TFLite or else ONNX export."""
    if model.file.suffix.lower() in EXPORT_RUNNERS:
        return model.file
    if backend == "keras":
        return None
    exports = model.card.exports if model.card else {}
    for fmt in ("tflite", "onnx") if backend == "auto" else (backend,):
        record = exports.get(fmt)
        if record and model.file.with_name(record["file"]).is_file():
            return model.file.with_name(record["file"])
        if backend == fmt:
            raise UserError(
                f"{model.file}: no {fmt} export; run gender-cls export --format {fmt} first"
            )
    return None


def keras_if_asked(backend: str, mixed_precision: bool, jit: bool | None) -> str:
    """--mixed_precision and --jit are Keras settings: with them, auto means the Keras model."""
    if backend == "auto" and (mixed_precision or jit is not None):
        return "keras"
    return backend


def open_runner(
    model: ModelRef,
    backend: str = "auto",
    batch_size: int = 32,
    mixed_precision: bool = False,
    jit: bool | None = None,
) -> Runner:
    """A LiteRT or onnxruntime runner for an exported model, else a KerasRunner."""
    exported = exported_file(model, keras_if_asked(backend, mixed_precision, jit))
    if exported and (mixed_precision or jit is not None):
        raise UserError(f"{exported}: --mixed_precision and --jit apply to the Keras model, not to "
                        "an export; use --backend keras or leave them out")  # fmt: skip
    if exported:
        return open_exported(exported, batch_size)
    return KerasRunner(model, batch_size, mixed_precision, jit)
