"""Face verification: an embedding model trained on identity folders with an additive cosine
margin (CosFace), matched to a gallery of known people by cosine similarity.

It reuses the classifier's parts: the backbone and its preprocessing (models.pooled_features),
the data layer and tf.data pipeline (with distort.py's distortions as augmentation), the
optimizer, the artifacts' atomic writes, and the threshold tuning."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from gender_cls import artifacts
from gender_cls.atomic import replacing
from gender_cls.backbones import get_backbone
from gender_cls.config import FaceCrop, RunConfig
from gender_cls.data import DatasetIndex, Split, check_readable, list_images, scan_class_folders
from gender_cls.errors import UserError

log = logging.getLogger(__name__)
EMBEDDER_FILE = "embedder.keras"
BASE_WEIGHTS = "base.weights.h5"  # starts a classifier: train_model.py --weights RUN/base...
CARD_FILE = "verifier.json"
GALLERY_CACHE = "gallery_cache"  # the run's cached gallery embeddings, one .npz per gallery


@dataclass
class VerifierOptions:
    embedding_dim: int = 128
    margin: float = 0.35  # CosFace's additive margin on the cosine of the true identity
    scale: float = 30.0
    val_people: float = 0.2  # share of the people held out (never trained on) to tune on
    aggregate: str = "max"  # a probe against an identity: its best or mean image similarity
    loss: str = "cosface"  # or "triplet": semi-hard triplets in batches of K images per person
    images_per_person: int = 4  # K, for the triplet loss
    triplet_margin: float = 0.2  # on squared distances between unit embeddings (0 to 4)
    flip_average: bool = True  # embed an image and its mirror image, and average the two
    face_crop: bool | None = None  # align faces first; None: where the backbone has an embedding


class CosineMargin(keras.layers.Layer):
    """CosFace logits: scale * (cos(embedding, class centre) - margin on the true class)."""

    def __init__(self, classes: int, margin: float, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.classes, self.margin, self.scale = classes, margin, scale

    def build(self, shapes):
        dim = shapes[0][-1]
        self.centres = self.add_weight(shape=(dim, self.classes), initializer="glorot_uniform",
                                       name="centres")  # fmt: skip

    def call(self, inputs):
        embeddings, targets = inputs
        centres = keras.ops.normalize(self.centres, axis=0)
        cosine = keras.ops.matmul(embeddings, centres)
        return self.scale * (cosine - self.margin * targets)


def anchor_centres(margin: CosineMargin, clean: np.ndarray, labels: list[int]) -> None:
    """Fix each person's CosFace centre at the mean of the untrained embedding of their clean
    images, so training maps distorted faces onto where the pretrained network puts the clean ones
    (a distillation through the centres) instead of moving the whole space to random centres."""
    labels = np.asarray(labels)
    centres = np.stack([clean[labels == k].mean(axis=0) for k in range(margin.classes)], axis=1)
    margin.centres.assign(centres / np.linalg.norm(centres, axis=0, keepdims=True))
    margin.trainable = False


def distillation_data(embedder: keras.Model, split: Split, size: int, config: RunConfig):
    """(augmented image, the untrained embedder's vector of the same image clean) batches:
    trained with a cosine loss, a copy learns to put a distorted face where the original puts the
    clean one, so clean faces keep their place. Identities are not needed."""
    import tensorflow as tf

    from gender_cls.pipeline import make_dataset

    targets = tf.constant(embed(embedder, split.paths, size))
    indexed = Split(list(split.paths), list(range(len(split))))  # each image its own "class"
    d = config.data
    batches = make_dataset(indexed, len(split), size, d.batch_size, training=True,
                           augment=config.augment, seed=d.seed)  # fmt: skip
    return batches.map(lambda x, y: (x, tf.gather(targets, tf.argmax(y, axis=-1))))


def semi_hard_triplet_loss(margin: float):
    """The triplet loss with semi-hard negatives (FaceNet; tfa.losses.TripletSemiHardLoss): for
    every anchor-positive pair of a batch, the closest negative farther than the positive, else
    the farthest negative. Targets are one-hot identities, predictions unit embeddings."""
    ops = keras.ops

    def loss(targets, embeddings):
        same = ops.matmul(targets, ops.transpose(targets)) > 0.5
        distance = ops.maximum(2.0 - 2.0 * ops.matmul(embeddings, ops.transpose(embeddings)), 0.0)
        positive = ops.logical_and(same, ops.logical_not(ops.eye(ops.shape(same)[0]) > 0.5))
        to_positive, to_negative = distance[:, :, None], distance[:, None, :]  # [anchor, pos, neg]
        negative = ops.logical_not(same)[:, None, :]
        semi_hard = ops.logical_and(negative, to_negative > to_positive)
        closest = ops.min(ops.where(semi_hard, to_negative, 4.0), axis=2)
        farthest = ops.max(ops.where(negative, to_negative, 0.0), axis=2)
        chosen = ops.where(ops.any(semi_hard, axis=2), closest, farthest)
        losses = ops.relu(distance - chosen + margin)
        weights = ops.cast(positive, losses.dtype)
        return ops.sum(losses * weights) / ops.maximum(ops.sum(weights), 1.0)

    return loss


def build_embedder(config: RunConfig, image_size: int, dim: int) -> keras.Model:
    """Raw pixels -> backbone -> GAP -> BN -> Dense(dim) -> BN -> L2 normalisation (ArcFace's
    "BN-FC-BN" output: on held-out people it beat a plain Dense in ROC AUC, TAR and top-1). A
    backbone with a face embedding of its own (dlib_face_resnet) keeps it: GAP -> L2, so the
    embedder matches as that network does before any training (`dim` is then its size)."""
    from gender_cls.models import pooled_features

    own = get_backbone(config.model.backbone).embedder is not None
    inputs, x, _ = pooled_features(config.model, image_size, embedding=own)
    if own:
        from gender_cls.models import get_base

        embedder = keras.Model(inputs, keras.layers.UnitNormalization(name="unit")(x),
                               name="embedder")  # fmt: skip
        for layer in get_base(embedder).layers:  # scale-and-shift folded from BatchNorm: fit()
            if isinstance(layer, keras.layers.BatchNormalization):  # would normalise by batch
                layer.trainable = False
        return embedder
    x = keras.layers.BatchNormalization(name="features_norm")(x)
    x = keras.layers.Dense(dim, use_bias=False, name="embedding")(x)
    x = keras.layers.BatchNormalization(name="embedding_norm")(x)
    outputs = keras.layers.UnitNormalization(name="unit")(x)
    return keras.Model(inputs, outputs, name="embedder")


def cosface_trainer(embedder: keras.Model, people: int, options: VerifierOptions) -> keras.Model:
    """(image, one-hot identity) -> CosFace logits over the training people."""
    size = embedder.input_shape[1]
    image, target = keras.Input((size, size, 3)), keras.Input((people,))
    margin = CosineMargin(people, options.margin, options.scale)
    return keras.Model([image, target], margin([embedder(image), target]))


def split_people(root: str | Path, val_share: float, seed: int):
    """(train Split over the training people, their names, the held-out people's names and
    folders): whole identities are held out, never single images."""
    folders = scan_class_folders(Path(root))
    names = sorted(folders)
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(names)[: max(2, round(len(names) * val_share))].tolist())
    train_names = [n for n in names if n not in held]
    if len(train_names) < 2:
        raise UserError(f"{root}: too few people ({len(names)}) to hold some out for tuning")
    split = Split()
    for label, name in enumerate(train_names):
        split.paths += [str(p) for p in folders[name]]
        split.labels += [label] * len(folders[name])
    return split, train_names, {n: folders[n] for n in sorted(held)}


def unit_embeddings(embedder: keras.Model, batches, flip: bool) -> np.ndarray:
    """Embeddings of a tf.data of image batches; with `flip`, the normalised mean of each
    image's and its mirror image's (a face is about symmetric: steadier than either alone)."""
    import tensorflow as tf

    vectors = np.asarray(embedder.predict(batches, verbose=0), np.float32)
    if flip:
        vectors += embedder.predict(batches.map(lambda x: tf.reverse(x, [2])), verbose=0)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


def aligned(paths: list[str], crop: FaceCrop | None, image_size: int) -> list[str]:
    """Each image's aligned face (from the user's face cache, detected once), or the image itself
    where no face is found or `crop` is None."""
    if crop is None:
        return list(paths)
    from gender_cls.faces import CropCache, default_cache_dir

    return [r.crop or r.source for r in CropCache(default_cache_dir(), crop, image_size)
            .get_many(paths)]  # fmt: skip


def embed(embedder: keras.Model, paths: list[str], image_size: int, flip: bool = False,
          crop: FaceCrop | None = None):  # fmt: skip
    """Unit-norm embeddings of image files (their aligned faces with `crop`), in order; an
    unreadable file is a UserError."""
    from gender_cls.pipeline import predict_dataset

    paths = aligned(paths, crop, image_size)
    try:
        vectors = unit_embeddings(embedder, predict_dataset(paths, image_size, 64, "stretch"),
                                  flip)  # fmt: skip
    except Exception:  # TensorFlow's error for a file it cannot decode names no file
        _refuse_unreadable(paths)
        raise
    if len(vectors) != len(paths):
        _refuse_unreadable(paths)
    return vectors


def _refuse_unreadable(paths: list[str]) -> None:
    """A UserError naming the first file of `paths` that cannot be decoded, if any."""
    from gender_cls.images import ImageReadError, read_image

    for path in paths:
        try:
            read_image(path, size_hint=32)
        except ImageReadError as error:
            raise UserError(f"{error}; replace or remove it") from None


def similarities(probes: np.ndarray, gallery: dict[str, np.ndarray], aggregate: str):
    """[probes, identities] cosine similarity of each probe to each identity's images."""
    reduce = np.max if aggregate == "max" else np.mean
    return np.stack([reduce(probes @ gallery[name].T, axis=1) for name in gallery], axis=1)


def open_set_scores(embedder, people: dict[str, list], size: int, options: VerifierOptions, seed):
    """Scores to tune a threshold on: half the held-out people form a gallery (their first
    image), the rest of their images are genuine probes and the other half's images impostors,
    each probe clean and under every distortion (a few hundred images alone made the threshold
    jump between runs). Returns (best similarity, 1 for a known person)."""
    import tensorflow as tf

    from gender_cls.distort import KINDS, distort
    from gender_cls.images import load_image

    names = sorted(people)
    known = names[::2]  # the other half are impostors
    flip = options.flip_average
    firsts = embed(
        embedder, [str(people[n][0]) for n in known], size, flip
    )  # one call, not one each
    gallery = {name: firsts[i : i + 1] for i, name in enumerate(known)}
    rng = np.random.default_rng(seed)
    probes, labels = [], []
    for name in names:
        for path in people[name][1:] if name in known else people[name]:
            image = load_image(path, size)
            probes += [image] + [distort(image, kind, rng) for kind in KINDS]
            labels += [int(name in known)] * (1 + len(KINDS))
    batches = tf.data.Dataset.from_tensor_slices(np.stack(probes).astype(np.float32)).batch(64)
    vectors = unit_embeddings(embedder, batches, flip)
    best = similarities(vectors, gallery, options.aggregate).max(axis=1)
    return best, np.asarray(labels)


def train_verifier(
    config: RunConfig, options: VerifierOptions, verbose: int | str = 0, overwrite: bool = False
) -> dict:
    """Train on the identity folders of config.data.data_path; write embedder.keras,
    base.weights.h5 and verifier.json (threshold tuned on held-out people) to the output dir,
    which must not hold another run unless `overwrite`."""
    d, t = config.data, config.train
    start = time.perf_counter()
    if (Path(t.output_dir) / CARD_FILE).exists() and not overwrite:
        raise UserError(f"{t.output_dir}: already holds a verifier; pass --overwrite to replace "
                        "it, or another --output_dir")  # fmt: skip
    triplet = options.loss == "triplet"
    if triplet and (options.images_per_person < 2 or d.batch_size % options.images_per_person):
        raise UserError(f"--images_per_person {options.images_per_person} must be 2 or more and "
                        f"divide --batch_size {d.batch_size}")  # fmt: skip
    if options.loss == "distill" and get_backbone(config.model.backbone).embedder is None:
        raise UserError(f"--loss distill needs a backbone with a face embedding of its own "
                        f"(dlib_face_resnet), not {config.model.backbone}")  # fmt: skip
    with artifacts.run_lock(t.output_dir):
        return _fit_verifier(config, options, verbose, overwrite, start)


def _fit_verifier(config: RunConfig, options: VerifierOptions, verbose, overwrite: bool,
                  start: float) -> dict:  # fmt: skip
    """train_verifier's work, in its locked output folder."""
    from gender_cls.models import get_base
    from gender_cls.pipeline import make_dataset
    from gender_cls.thresholds import tune_threshold
    from gender_cls.training import Phase, make_optimizer

    d, t = config.data, config.train
    triplet = options.loss == "triplet"
    out = artifacts.prepare_run_dir(t.output_dir, overwrite=overwrite)  # refuses a classifier run
    shutil.rmtree(out / GALLERY_CACHE, ignore_errors=True)  # an earlier embedder's vectors
    keras.utils.set_random_seed(d.seed)
    split, train_names, held = split_people(d.data_path, options.val_people, d.seed)
    index = check_readable(DatasetIndex(d.data_path, train_names, {"train": split}, "folders"))
    split = index.splits["train"]
    backbone = get_backbone(config.model.backbone)
    size = d.image_size or (backbone.default_size if backbone.embedder else 96)
    crop = verifier_crop(options, backbone.face_template, backbone.embedder is not None)
    if crop is not None:  # every image aligned once, as the gallery and probes will be
        split.paths = aligned(split.paths, crop, size)
        held = {name: aligned([str(p) for p in paths], crop, size) for name, paths in held.items()}
    log.info("%d people (%d images) to train on, %d held out", len(train_names), len(split),
             len(held))  # fmt: skip
    train_ds = make_dataset(split, len(train_names), size, d.batch_size, training=True,
                            augment=config.augment, seed=d.seed,
                            images_per_class=options.images_per_person if triplet else 0)  # fmt: skip
    embedder = build_embedder(config, size, options.embedding_dim)
    if options.loss == "distill":
        train_ds = distillation_data(embedder, split, size, config)
        trainer, loss = embedder, keras.losses.CosineSimilarity()
    elif triplet:
        trainer, loss = embedder, semi_hard_triplet_loss(options.triplet_margin)
    else:
        train_ds = train_ds.map(lambda x, y: ((x, y), y))
        trainer = cosface_trainer(embedder, len(train_names), options)
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        if backbone.embedder is not None and t.head_epochs:
            anchor_centres(trainer.layers[-1], embed(embedder, split.paths, size), split.labels)
    epochs, losses = t.head_epochs, []
    if epochs:  # 0: the backbone's own embedding as it comes
        phase = Phase("verifier", epochs, t.lr or 3e-3, "all", schedule="cosine")
        trainer.compile(make_optimizer(t, phase, int(train_ds.cardinality())), loss)
        losses = trainer.fit(train_ds, epochs=epochs, verbose=verbose,
                             callbacks=[keras.callbacks.TerminateOnNaN()]).history["loss"]  # fmt: skip
    scores, labels = open_set_scores(embedder, held, size, options, d.seed)
    threshold = tune_threshold(labels, scores, "balanced_accuracy")
    held_out = verification_metrics(labels, scores, threshold, top1_correct=[])
    artifacts.save_model(embedder, out / EMBEDDER_FILE)
    with replacing(out / BASE_WEIGHTS) as temp:
        get_base(embedder).save_weights(temp)
    card = {
        "image_size": size, "embedding_dim": int(embedder.output_shape[-1]),
        "face_crop": asdict(crop) if crop else None, "threshold": threshold,
        "threshold_source": "tuned on held-out people (balanced accuracy)",
        "held_out_metrics": {k: v for k, v in held_out.items() if k != "top1_accuracy"},
        "aggregate": options.aggregate, "train_people": train_names,
        "held_out_people": sorted(held), "loss": losses,
        "seconds": time.perf_counter() - start, "config": config.to_dict(),
        "options": options.__dict__,
    }  # fmt: skip
    artifacts.write_json(card, out / CARD_FILE)
    return card


def default_epochs(backbone: str) -> int:
    """0 for a backbone with a face embedding of its own (dlib's matched better untrained than
    after the fine-tuning measured in the README), 30 otherwise."""
    return 0 if get_backbone(backbone).embedder is not None else 30


def verifier_crop(options: VerifierOptions, template: str, own_embedding: bool) -> FaceCrop | None:
    """The face crop a new verifier embeds through: asked for, or by default where the backbone
    brings a face embedding of its own (it was trained on aligned faces: on the test people of
    ../shared/data/identities, untrained, ROC AUC 0.98 aligned against 0.80 resized)."""
    wanted = own_embedding if options.face_crop is None else options.face_crop
    return FaceCrop(template=template) if wanted else None


def load_verifier(run: str | Path):
    """(embedder, card) of a train-verifier run directory."""
    from gender_cls.runners import load_keras_model

    run = Path(run)
    if not (run / CARD_FILE).is_file():
        raise UserError(f"{run}: no {CARD_FILE}; pass a run directory of gender-cls "
                        "train-verifier")  # fmt: skip
    return load_keras_model(run / EMBEDDER_FILE), artifacts.read_json(run / CARD_FILE)


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
    import hashlib

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


def probe_files(folder: str | Path) -> list[Path]:
    found = list_images(Path(folder)) if Path(folder).is_dir() else [Path(folder)]
    if not found:
        raise UserError(f"{folder}: no probe images")
    return found


def tar_at_far(labels, scores, far: float) -> float:
    """The share of genuine probes accepted at the strictest threshold whose false accept rate
    among impostors is at most `far`."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    allowed = fpr <= far
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def verification_metrics(labels, scores, threshold: float, top1_correct) -> dict:
    """Match decisions at `threshold` against whether each probe's person is in the gallery."""
    from sklearn import metrics

    labels, decided = np.asarray(labels), np.asarray(scores) >= threshold
    both = len(set(labels.tolist())) == 2
    return {
        "probes": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, decided)),
        "precision": float(metrics.precision_score(labels, decided, zero_division=0)),
        "recall": float(metrics.recall_score(labels, decided, zero_division=0)),
        "f1": float(metrics.f1_score(labels, decided, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, scores)) if both else None,
        "tar_at_far_1e-2": tar_at_far(labels, scores, 1e-2) if both else None,
        "tar_at_far_1e-3": tar_at_far(labels, scores, 1e-3) if both else None,
        "top1_accuracy": float(np.mean(top1_correct)) if len(top1_correct) else None,
    }


def probe_kind(path: Path) -> str:
    """The distortion in a `<stem>_<kind>.jpg` name from gender-cls distort, else "clean"."""
    from gender_cls.config import DISTORTION_KINDS

    suffix = path.stem.rsplit("_", 1)[-1]
    return suffix if suffix in DISTORTION_KINDS else "clean"


def evaluate_verifier(run, gallery_dir, probes_dir, out_dir, aggregate: str | None = None) -> dict:
    """Every probe (laid out as <identity>/*.jpg) against the gallery: metrics overall and per
    distortion kind, metrics.json, predictions.csv, the similarity histogram and ROC curve."""
    import csv

    from gender_cls import plots

    embedder, card = load_verifier(run)
    aggregate = aggregate or card["aggregate"]
    size, threshold = card["image_size"], card["threshold"]
    flip, crop = flip_average(card), face_crop_of(card)
    gallery = gallery_embeddings(embedder, gallery_dir, size, flip,
                                 gallery_cache_file(run, gallery_dir), crop)  # fmt: skip
    paths = probe_files(probes_dir)
    probes = embed(embedder, [str(p) for p in paths], size, flip, crop)
    scores = similarities(probes, gallery, aggregate)
    names = list(gallery)
    best, guess = scores.max(axis=1), [names[i] for i in scores.argmax(axis=1)]
    truth = [p.parent.name for p in paths]
    known = np.asarray([t in gallery for t in truth], int)
    kinds = [probe_kind(p) for p in paths]

    def measure(mask) -> dict:
        top1 = [g == t for g, t, k, m in zip(guess, truth, known, mask, strict=True) if k and m]
        return verification_metrics(known[mask], best[mask], threshold, top1)

    everything = np.ones(len(paths), bool)
    result = {"threshold": threshold, "aggregate": aggregate, "overall": measure(everything),
              "per_kind": {k: measure(np.asarray(kinds) == k) for k in sorted(set(kinds))}}  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(result, out / "metrics.json")
    with (
        replacing(out / "predictions.csv") as temp,
        temp.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(["path", "identity", "kind", "best_identity", "similarity", "match"])
        for p, t, k, g, s in zip(paths, truth, kinds, guess, best, strict=True):
            writer.writerow([p, t, k, g, f"{s:.4f}", int(s >= threshold)])
    plots.similarity_histogram(best[known == 1], best[known == 0], threshold,
                               out / "similarity_histogram.png")  # fmt: skip
    if len(set(known.tolist())) == 2:
        plots.roc_curve(known, best, out / "roc_curve.png")
    return result
