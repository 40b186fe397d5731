"""The model card (`model.json`, also inside the model file) and the reference to a model: atomic
writes, clear reads."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from gender_cls.artifacts.card_fields import CARD_FIELDS, MAX_CARD_BYTES, check_fields
from gender_cls.artifacts.disk_space import ensure_room_for
from gender_cls.artifacts.run_folder import META_FILE, MODEL_FILE, parse_json, read_json, write_json
from gender_cls.atomic import replacing
from gender_cls.config import FaceCrop, RunConfig
from gender_cls.errors import UserError

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
MODEL_SUFFIXES = (*KERAS_SUFFIXES, ".tflite", ".onnx")
EMBEDDED_CARD = "gender_cls.json"  # the card inside a .keras zip, or an attribute of a .h5 file


def save_model(model, path: str | Path, card: ModelCard | None = None) -> Path:
    """Save a Keras model atomically (.keras, or legacy HDF5 for .h5), with `card` inside."""
    ensure_room_for(model, path)
    with replacing(path) as temp:
        model.save(temp)
        if card is not None:
            _embed_card(temp, card)
    return Path(path)


def _embed_card(model_file: Path, card: ModelCard) -> None:
    """Put the card inside a model file not yet in place (a temp file), replacing one there, so
    the file alone predicts like its run."""
    text = json.dumps(card.to_dict(), default=str)
    if model_file.suffix.lower() != ".keras":
        import h5py  # only for .h5 files

        with h5py.File(model_file, "a") as handle:
            handle.attrs[EMBEDDED_CARD] = text
        return
    with zipfile.ZipFile(model_file) as archive:
        entries = [(item, archive.read(item)) for item in archive.infolist()
                   if item.filename != EMBEDDED_CARD]  # fmt: skip
    with zipfile.ZipFile(model_file, "w") as archive:  # rewritten: a zip entry cannot be replaced
        for item, data in entries:
            archive.writestr(item, data)
        archive.writestr(EMBEDDED_CARD, text)


def update_card(model: ModelRef, card: ModelCard) -> None:
    """Write a changed card (a new threshold, a temperature) beside the model and inside it."""
    if model.file.suffix.lower() in KERAS_SUFFIXES:
        with replacing(model.file) as temp:
            shutil.copyfile(model.file, temp)
            _embed_card(temp, card)
    card.save(model.card_path)


def embedded_card(model_file: Path) -> ModelCard | None:
    """The card saved inside a .keras or .h5 file by gender_cls, else None."""
    suffix, source = model_file.suffix.lower(), f"{model_file} (its built-in card)"
    try:
        if suffix == ".keras":
            with zipfile.ZipFile(model_file) as archive:
                if EMBEDDED_CARD not in archive.namelist():
                    return None
                entry = archive.getinfo(EMBEDDED_CARD)
                if entry.file_size > MAX_CARD_BYTES:
                    raise UserError(f"{source}: declares {entry.file_size:,} bytes, more than "
                                    f"a card's {MAX_CARD_BYTES:,}; not a card gender_cls wrote")  # fmt: skip
                with archive.open(entry) as handle:  # never more than the size declared
                    text = handle.read(MAX_CARD_BYTES + 1)
        elif suffix in (".h5", ".hdf5"):
            import h5py  # only for .h5 files

            with h5py.File(model_file, "r") as handle:
                text = handle.attrs.get(EMBEDDED_CARD)
            if text is None:
                return None
        else:
            return None
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return None  # not readable as a model either: loading it says so
    if len(text) > MAX_CARD_BYTES:
        raise UserError(f"{source}: over {MAX_CARD_BYTES:,} bytes; not a card gender_cls wrote")
    return ModelCard.from_dict(parse_json(text, source), source)


def metadata_path(model_path: str | Path) -> Path:
    """model.json for a run directory or model.keras; NAME.json beside any other model file."""
    model_path = Path(model_path)
    if model_path.is_dir():
        return model_path / META_FILE
    if model_path.name == MODEL_FILE:
        return model_path.with_name(META_FILE)
    return model_path.with_suffix(".json")


INPUT_DESCRIPTION = "RGB pixels in [0, 255], float32 or uint8, shape (batch, size, size, 3)"


@dataclass
class ModelCard:
    """What model.json says about a trained model: training writes it, everything else reads it.

    class_names and image_size are required; a hand-written card beside a foreign model may leave
    out the rest: pixels are then fed 0-255 ("raw"), stretched, and thresholded at 0.5.
    """

    class_names: list[str]
    image_size: int
    backbone: str = ""
    input_scale: str = "raw"  # "raw": pixels 0-255 (preprocessing inside the model); "unit": /255
    resize: str = "stretch"
    threshold: float | None = None  # on P(class_names[1]); None: argmax (multi-class)
    threshold_source: str = "model.json"
    validation: dict = field(default_factory=dict)
    epochs_trained: int | None = None
    phase2_start_epoch: int | None = None
    data: dict = field(default_factory=dict)
    config: RunConfig | None = None  # the training run's options (None: not from training)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    exports: dict[str, dict] = field(default_factory=dict)  # format -> {file, ...}
    face_crop: FaceCrop | None = None  # set: every image is face-cropped before prediction
    temperature: float = 1.0  # probabilities are softened by softmax(log p / T) (calibration)

    @property
    def binary(self) -> bool:
        return len(self.class_names) == 2

    def to_dict(self) -> dict:
        """The JSON form, with two descriptive lines for people reading the file."""
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        raw["config"] = self.config.to_dict() if self.config else None
        raw["face_crop"] = asdict(self.face_crop) if self.face_crop else None
        output = "sigmoid: probability of class_names[1]" if self.binary else "softmax"
        return {**raw, "input": INPUT_DESCRIPTION, "output": output}

    @classmethod
    def from_dict(cls, raw: dict, source: str | Path = "model.json") -> ModelCard:
        """Read a card; a missing required field or an unknown one is a UserError naming it."""
        if not isinstance(raw, dict):
            raise UserError(f"{source}: not a model card (a JSON object with class_names)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known - {"input", "output"})
        if unknown:
            raise UserError(f"{source}: unknown field(s) {', '.join(unknown)}; it was written by "
                            "a newer gender_cls, so upgrade this one")  # fmt: skip
        missing = [name for name in ("class_names", "image_size") if name not in raw]
        if missing:
            raise UserError(f"{source}: no {' or '.join(missing)}; a model's .json needs at least "
                            '{"class_names": [...], "image_size": N}')  # fmt: skip
        return cls(**check_fields(raw, CARD_FIELDS, str(source)))

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        """Read model.json: at most MAX_CARD_BYTES, UTF-8 JSON, every field checked."""
        return cls.from_dict(read_json(path, MAX_CARD_BYTES), path)

    def save(self, path: str | Path) -> Path:
        write_json(self.to_dict(), path)
        return Path(path)


@dataclass(frozen=True)
class ModelRef:
    """A resolved --model_path: the model file and its card, from the .json beside it (which
    export keeps up to date) or else from inside the file; None for a bare model."""

    file: Path
    card: ModelCard | None

    @property
    def card_path(self) -> Path:
        return metadata_path(self.file)


def save_artifact(model, card: ModelCard, model_path: str | Path) -> tuple[Path, Path]:
    """Write the model (with its card inside) and its card beside it; returns both paths."""
    saved = save_model(model, model_path, card)
    return saved, card.save(metadata_path(saved))


def resolve_model(model_path: str | Path | ModelRef) -> ModelRef:
    """The model file and its card for a run directory or a model file, with clear errors."""
    if isinstance(model_path, ModelRef):
        return model_path
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
    return ModelRef(path, ModelCard.load(meta) if meta.is_file() else embedded_card(path))


def package_versions() -> dict[str, str]:

    found = {}
    for name in ("gender_cls", "tensorflow", "keras", "numpy", "scikit-learn"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
