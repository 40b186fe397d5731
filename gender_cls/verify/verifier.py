"""A trained verifier as an object: load a train-verifier run, enrol a gallery of known people
(its embeddings cached in the run), and match probes to it by cosine similarity."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from gender_cls.artifacts.card_fields import (
    MAX_CARD_BYTES,
    MAX_IMAGE_SIZE,
    Rule,
    check_fields,
    read_face_crop,
)
from gender_cls.artifacts.run_folder import read_json
from gender_cls.atomic import replacing
from gender_cls.config import AGGREGATES, FaceCrop, ModelConfig, RunConfig
from gender_cls.data.index import (
    scan_class_folders,
)
from gender_cls.errors import UserError
from gender_cls.models.backbones import face_embedding_backbones, get_backbone
from gender_cls.predict.runners import load_keras_model
from gender_cls.verify.embedding import (
    aligned_and_missing,
    build_embedder,
    embed,
    similarities,
)

log = logging.getLogger(__name__)
EMBEDDER_FILE = "embedder.keras"
BASE_WEIGHTS = "base.weights.h5"  # starts a classifier: train_model.py --weights RUN/base...
CARD_FILE = "verifier.json"
VERIFIER_FIELDS = {
    "image_size": Rule("whole", 8, MAX_IMAGE_SIZE),
    "threshold": Rule("number", -1, 2),  # on a cosine similarity; above 1, nothing matches
    "aggregate": Rule("choice", choices=AGGREGATES),
    "options": Rule("mapping"),
    "face_crop": Rule("section", optional=True, read=read_face_crop),
    "far": Rule("number", 0, 1, optional=True),
}
GALLERY_CACHE = "gallery_cache"  # the run's cached gallery embeddings, one .npz per gallery


@dataclass
class Match:
    """One probe matched to a gallery: the most similar person, and whether that is a match."""

    probe: str
    identity: str
    similarity: float
    threshold: float
    match: bool
    far: float | None = None  # the false accept rate the threshold was chosen at (older: None)

    def to_dict(self) -> dict:
        return {**asdict(self), "match": int(self.match)}


@dataclass
class FaceEmbedder:
    """What turns image files into unit embeddings: a network, its input size, the face crop it
    embeds through and whether it averages each face with its mirror image. From a
    train-verifier run, or from a backbone with a face embedding of its own, as it comes."""

    model: keras.Model
    image_size: int
    crop: FaceCrop | None
    flip: bool
    card: dict  # the run's verifier.json ({} for a backbone)

    @classmethod
    def from_run(cls, run: str | Path) -> FaceEmbedder:
        model, card = load_verifier(run)
        return cls(model, card["image_size"], face_crop_of(card), flip_average(card), card)

    @classmethod
    def from_backbone(cls, name: str) -> FaceEmbedder:
        """The backbone's own embedding, untrained here, through the face crop its template
        aligns (no mirror average: the network as its authors published it)."""
        backbone = get_backbone(name)
        if backbone.embedder is None:
            raise UserError(f"{name}: this backbone has no face embedding of its own; train a "
                            "verifier on it (gender-cls train-verifier) and pass its run")  # fmt: skip
        config = RunConfig(model=ModelConfig(backbone=name, weights="imagenet"))
        model = build_embedder(config, backbone.default_size, 0)
        crop = FaceCrop(template=backbone.face_template)
        return cls(model, backbone.default_size, crop, False, {})

    @classmethod
    def open(cls, model_path: str | Path) -> FaceEmbedder:
        """A train-verifier run folder, or the name of a backbone with its own embedding."""
        if Path(model_path).exists() or str(model_path) not in face_embedding_backbones():
            return cls.from_run(model_path)
        return cls.from_backbone(str(model_path))

    def embed(self, paths: list[str | Path]) -> np.ndarray:
        """Unit-norm embeddings of image files, through the face crop, in order; where no face is
        found the whole image is embedded."""
        return self.embed_faces(paths)[0]

    def embed_faces(self, paths: list[str | Path]) -> tuple[np.ndarray, list[str]]:
        """embed(), and the images of `paths` in which no face was found (embedded whole)."""
        files, missing = aligned_and_missing([str(p) for p in paths], self.crop, self.image_size)
        return embed(self.model, files, self.image_size, self.flip), missing


class Verifier:
    """A train-verifier run: `enrol` a folder of identity folders, then `match` probe images.

    verifier = Verifier("runs/verifier")
    verifier.enrol("people/")
    verifier.match("photo.jpg")  # Match(identity=..., similarity=..., match=True)
    """

    def __init__(self, run: str | Path, aggregate: str | None = None):
        self.run = Path(run)
        self.faces = FaceEmbedder.from_run(run)
        self.card = self.faces.card
        self.threshold: float = self.card["threshold"]
        self.aggregate: str = aggregate or self.card["aggregate"]
        self.gallery: dict[str, np.ndarray] = {}

    def embed(self, paths: list[str | Path]) -> np.ndarray:
        """Unit-norm embeddings of image files, through the run's face crop, in order."""
        return self.faces.embed(paths)

    def enrol(self, folder: str | Path) -> dict[str, np.ndarray]:
        """Make `folder`'s people (one folder each) the gallery; its embeddings are cached in the
        run, so only new or changed images are embedded next time."""
        faces = self.faces
        self.gallery = gallery_embeddings(faces.model, folder, faces.image_size, faces.flip,
                                          gallery_cache_file(self.run, folder), faces.crop)  # fmt: skip
        return self.gallery

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """[probes, people] similarity of each embedding to each enrolled person."""
        if not self.gallery:
            raise UserError("no gallery: call enrol(FOLDER) first")
        return similarities(vectors, self.gallery, self.aggregate)

    def match(self, probe: str | Path) -> Match:
        """The enrolled person most similar to `probe`, and whether the similarity reaches the
        run's threshold."""
        scores = self.scores(self.embed([probe]))[0]
        best = int(scores.argmax())
        similarity = float(scores[best])
        return Match(str(probe), list(self.gallery)[best], similarity, self.threshold,
                     similarity >= self.threshold, self.card.get("far"))  # fmt: skip


def load_verifier(run: str | Path):
    """(embedder, card) of a train-verifier run directory; the card's fields that matching reads
    are checked as a model card's are."""

    run = Path(run)
    if not (run / CARD_FILE).is_file():
        raise UserError(f"{run}: no {CARD_FILE}; pass a run directory of gender-cls "
                        "train-verifier")  # fmt: skip
    card = read_json(run / CARD_FILE, MAX_CARD_BYTES)
    missing = [name for name, rule in VERIFIER_FIELDS.items()
               if not rule.optional and name not in card]  # fmt: skip
    if not isinstance(card, dict) or missing:
        raise UserError(f"{run / CARD_FILE}: not a verifier card (no {', '.join(missing)})")
    check_fields(card, VERIFIER_FIELDS, str(run / CARD_FILE))
    return load_keras_model(run / EMBEDDER_FILE), card


def flip_average(card: dict) -> bool:
    """Whether a run embeds the mirror image too (runs from before the option did not)."""
    return bool(card.get("options", {}).get("flip_average", False))


def face_crop_of(card: dict) -> FaceCrop | None:
    """The face crop a run embeds through (runs from before it have none)."""
    crop = card.get("face_crop")
    return None if crop is None else FaceCrop.read(crop, CARD_FILE)


def gallery_cache_file(run: str | Path, gallery: str | Path) -> Path:
    """Where a run keeps the embeddings of one gallery folder: named by the folder and the
    embedder file's size and time, so a retrained embedder never reads old vectors."""

    model = (Path(run) / EMBEDDER_FILE).stat()
    stamp = f"{Path(gallery).resolve()}|{model.st_size}|{model.st_mtime_ns}"
    return Path(run) / GALLERY_CACHE / f"{hashlib.sha1(stamp.encode()).hexdigest()[:16]}.npz"


def _file_key(path: str) -> str:
    stat = Path(path).stat()
    return f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _read_cache(cache: Path) -> dict[str, np.ndarray]:
    """The cached vectors; a damaged cache is dropped (logged) and rebuilt by the caller."""
    if not cache.is_file():
        return {}
    try:
        with np.load(cache) as saved:
            return dict(zip(saved["keys"].tolist(), saved["vectors"], strict=True))
    except Exception as error:  # truncated or foreign: BadZipFile, EOFError, ValueError...
        log.warning("%s: damaged gallery cache (%s: %s); embedding again", cache,
                    type(error).__name__, error)  # fmt: skip
        cache.unlink(missing_ok=True)
        return {}


def _write_cache(cache: Path, vectors: dict[str, np.ndarray]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with replacing(cache) as temp:
            np.savez(temp, keys=np.asarray(list(vectors)), vectors=np.stack(list(vectors.values())))
    except OSError as error:
        log.warning("could not cache the gallery's embeddings in %s (%s); they will be "
                    "computed again next time", cache.parent, error)  # fmt: skip


def gallery_embeddings(
    embedder,
    folder: str | Path,
    image_size: int,
    flip: bool = False,
    cache: Path | None = None,
    crop: FaceCrop | None = None,
) -> dict[str, np.ndarray]:
    """{identity: its images' embeddings} for a folder of identity folders. With `cache` (see
    gallery_cache_file), only images new or changed since the last call are embedded."""
    folders = scan_class_folders(Path(folder))
    files = [(name, str(p)) for name, paths in sorted(folders.items()) for p in paths]
    keys = [_file_key(path) for _, path in files]
    known = _read_cache(cache) if cache else {}
    missing = [(key, path) for key, (_, path) in zip(keys, files, strict=True) if key not in known]
    if missing:
        vectors = embed(embedder, [path for _, path in missing], image_size, flip, crop)
        known.update(zip([key for key, _ in missing], vectors, strict=True))
    if cache and (missing or len(known) != len(keys)):
        _write_cache(cache, {key: known[key] for key in keys})  # stale entries dropped
    gallery: dict[str, list] = {}
    for (name, _), key in zip(files, keys, strict=True):
        gallery.setdefault(name, []).append(known[key])
    return {name: np.stack(vectors) for name, vectors in gallery.items()}
