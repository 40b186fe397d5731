"""Export a trained model to TFLite (LiteRT), ONNX or a SavedModel, checked against Keras."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from gender_cls.artifacts.card import ModelCard, ModelRef, now, resolve_model
from gender_cls.artifacts.run_folder import SPLIT_FILE, lock_inheriting_env, read_json, run_lock
from gender_cls.atomic import replacing
from gender_cls.data.images import ImageReadError, load_image
from gender_cls.errors import UserError
from gender_cls.faces.cache import CropCache
from gender_cls.predict.runners import load_keras_model, open_exported

log = logging.getLogger(__name__)
FORMATS = {"tflite": ".tflite", "onnx": ".onnx", "savedmodel": "_savedmodel"}
QUANTIZE = ("float16", "int8")


def export_path(model_file: Path, fmt: str, quantize: str | None) -> Path:
    """model.tflite beside model.keras (model_int8.tflite when quantized)."""
    suffix = f"_{quantize}" if quantize else ""
    return model_file.with_name(f"{model_file.stem}{suffix}{FORMATS[fmt]}")


def export_key(fmt: str, quantize: str | None) -> str:
    """The export's key in the card's `exports`: "tflite", "tflite_int8"..."""
    return f"{fmt}_{quantize}" if quantize else fmt


def sample_images(run_dir: Path, card: ModelCard, count: int) -> np.ndarray:
    """Training images from the run's split (for int8 calibration and the output check), face
    crops (from the run's cache) for a model trained on them."""

    paths: list[str] = []
    split_file = run_dir / SPLIT_FILE
    if split_file.is_file():
        splits = read_json(split_file)["splits"]
        paths = splits.get("train", {}).get("paths", [])
    cache = None
    if card.face_crop is not None:
        cache = CropCache(run_dir / "face_cache", card.face_crop, card.image_size)
    rng = np.random.default_rng(0)
    images = []
    for index in rng.permutation(len(paths))[: count * 2]:
        path = paths[index]
        if cache is not None:
            path = cache.get(path).crop or path
        try:
            images.append(load_image(path, card.image_size, card.resize))
        except ImageReadError:
            continue
        if len(images) == count:
            break
    if not images:  # no split to read: random pixels still check the conversion
        return rng.integers(0, 256, (count, card.image_size, card.image_size, 3)).astype(np.float32)
    return np.stack(images).astype(np.float32)


def export_model(
    model_path: str | Path | ModelRef,
    fmt: str = "tflite",
    quantize: str | None = None,
    samples: np.ndarray | None = None,
) -> dict:
    """Write the exported model, check it against Keras on `samples` (default: training images
    of its run), record it in its .json; returns the record."""

    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if quantize and fmt != "tflite":
        raise UserError("--quantize works with --format tflite only")
    ref = resolve_model(model_path)
    if ref.card is None:
        raise UserError(f"{ref.file}: export needs the model's .json beside it")
    if ref.file.suffix.lower() in (".tflite", ".onnx"):
        raise UserError(f"{ref.file}: already an export; pass the run directory or its .keras")
    target = export_path(ref.file, fmt, quantize)
    import keras  # TensorFlow, only when used

    if keras.backend.backend() != "tensorflow":
        return _export_under_tensorflow(ref, fmt, quantize)
    with run_lock(ref.file.parent):
        if samples is None:
            samples = sample_images(ref.file.parent, ref.card, 32)
        model = load_keras_model(ref.file)
        with replacing(target) as temp:
            record = {"file": target.name, **_export(model, fmt, quantize, samples, temp)}
        card = resolve_model(ref.file).card  # re-read under the lock: no lost update
        card.exports[export_key(fmt, quantize)] = record
        card.save(ref.card_path)
    log.debug("exported %s (%s)", target, record)
    return record


def _export_under_tensorflow(ref: ModelRef, fmt: str, quantize: str | None) -> dict:
    """The converters need the TensorFlow backend: export in a child process that reloads the
    saved model under it (this process may hold the run's lock; the child works under it)."""
    args = [sys.executable, "-m", "gender_cls", "export", "--model_path", str(ref.file),
            "--format", fmt, *(["--quantize", quantize] if quantize else [])]  # fmt: skip
    env = {**lock_inheriting_env(), "KERAS_BACKEND": "tensorflow"}
    log.info("exporting %s under the TensorFlow backend (a child process)", ref.file.name)
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"{ref.file}: export under TensorFlow failed: "
                        f"{lines[-1] if lines else f'exit {done.returncode}'}")  # fmt: skip
    return resolve_model(ref.file).card.exports[export_key(fmt, quantize)]


def _export(model, fmt: str, quantize: str | None, samples: np.ndarray, target: Path) -> dict:
    """Write `model` to `target` in `fmt`; the record, with its largest output difference
    from Keras on `samples` for the formats that run here."""

    if fmt == "tflite":
        model.export(
            str(target), format="litert", verbose=False, **_quantize_options(quantize, samples)
        )
    elif fmt == "onnx":
        model(samples[:1])  # Keras' ONNX exporter needs a model that has been called
        try:
            model.export(str(target), format="onnx", verbose=False)
        except ImportError as error:
            raise UserError(f"ONNX export needs tf2onnx and onnx: pip install tf2onnx onnx "
                            f"({error})") from None  # fmt: skip
    else:
        model.export(str(target), format="tf_saved_model", verbose=False)
    record = {"format": fmt, "quantize": quantize, "created": now()}
    if fmt in ("tflite", "onnx"):
        exported_out = open_exported(target).predict(samples)
        keras_out = model.predict(samples, verbose=0)
        record["max_abs_diff_vs_keras"] = float(np.max(np.abs(keras_out - exported_out)))
    return record


def _quantize_options(quantize: str | None, samples: np.ndarray) -> dict:
    if quantize is None:
        return {}
    import tensorflow as tf  # TensorFlow, only when used

    if quantize not in QUANTIZE:
        raise UserError(f"--quantize must be one of {QUANTIZE}")
    options: dict = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}
    else:

        def representative():
            for image in samples:
                yield [image[None]]

        options["representative_dataset"] = representative
    return options
