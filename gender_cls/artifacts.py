"""The run directory and the model artifact (model file + model.json): atomic writes, clear reads."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gender_cls.errors import UserError

MODEL_FILE = "model.keras"
META_FILE = "model.json"
CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
SPLIT_FILE = "split.json"
HISTORY_FILE = "history.csv"
RUN_ENTRIES = (MODEL_FILE, META_FILE, CONFIG_FILE, STATE_FILE, SPLIT_FILE, HISTORY_FILE,
               "training_plots", "checkpoints", "logs")  # fmt: skip
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".tflite", ".onnx")


def write_json(data: Any, path: str | Path) -> None:
    """Write JSON atomically: a temp file beside the target, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")
    os.replace(tmp, path)


def read_json(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(
            f"{path}: cannot read ({error}); it should be the JSON written by training"
        ) from None


def save_model(model, path: str | Path) -> Path:
    """Save a Keras model atomically (.keras, or legacy HDF5 for .h5)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    model.save(tmp)
    os.replace(tmp, path)
    return path


def metadata_path(model_path: str | Path) -> Path:
    """model.json for a run directory or model.keras; NAME.json beside any other model file."""
    model_path = Path(model_path)
    if model_path.is_dir():
        return model_path / META_FILE
    if model_path.name == MODEL_FILE:
        return model_path.with_name(META_FILE)
    return model_path.with_suffix(".json")


def save_artifact(model, metadata: dict, model_path: str | Path) -> tuple[Path, Path]:
    """Write the model and its metadata JSON beside it; returns both paths."""
    saved = save_model(model, model_path)
    meta = metadata_path(saved)
    write_json(metadata, meta)
    return saved, meta


def resolve_model(model_path: str | Path) -> tuple[Path, dict | None]:
    """(model file, metadata or None) for a run directory or a model file, with clear errors."""
    path = Path(model_path)
    if path.is_dir():
        path = path / MODEL_FILE
        if not path.is_file():
            raise UserError(
                f"{model_path}: no {MODEL_FILE} in this folder; pass a run directory from "
                "train_model.py or a .keras/.h5 file"
            )
    elif not path.is_file():
        raise UserError(f"{model_path}: model not found; check --model_path")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise UserError(f"{path}: not a model file; expected one of {', '.join(MODEL_SUFFIXES)}")
    meta = metadata_path(path)
    return path, (read_json(meta) if meta.is_file() else None)


def prepare_run_dir(run_dir: str | Path, overwrite: bool = False, resume: bool = False) -> Path:
    """Create the run directory; refuse one that holds another run unless told what to do."""
    run_dir = Path(run_dir)
    existing = [name for name in RUN_ENTRIES if (run_dir / name).exists()]
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise UserError(f"{run_dir}: no run to resume (no {CONFIG_FILE}); drop --resume")
        return run_dir
    if existing and not overwrite:
        raise UserError(
            f"{run_dir}: already holds a run ({', '.join(existing)}); pass --overwrite to "
            "replace it, --resume to continue it, or another --output_dir"
        )
    for name in existing:
        target = run_dir / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("gender_cls", "tensorflow", "keras", "numpy", "scikit-learn"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
