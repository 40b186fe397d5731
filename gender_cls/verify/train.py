"""Training a verifier on identity folders (CosFace, triplets or distillation), its threshold tuned
on held-out people."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gender_cls.artifacts.card import save_model
from gender_cls.artifacts.disk_space import ensure_room_for
from gender_cls.artifacts.run_folder import prepare_run_dir, run_lock, write_json
from gender_cls.atomic import replacing
from gender_cls.config import FaceCrop, RunConfig, VerifierOptions
from gender_cls.data.augment.distort import KINDS, distort
from gender_cls.data.images import load_image
from gender_cls.data.index import (
    DatasetIndex,
    Split,
    check_readable,
    scan_class_folders,
)
from gender_cls.data.pipeline import make_dataset
from gender_cls.errors import UserError
from gender_cls.models.backbones import get_backbone
from gender_cls.models.classifier import get_base
from gender_cls.training.phases import Phase, make_optimizer
from gender_cls.verify.embedding import (
    aligned,
    anchor_centres,
    build_embedder,
    cosface_trainer,
    distillation_data,
    embed,
    semi_hard_triplet_loss,
    similarities,
    unit_embeddings,
)
from gender_cls.verify.evaluate import verification_metrics
from gender_cls.verify.protocol import threshold_at_far
from gender_cls.verify.verifier import BASE_WEIGHTS, CARD_FILE, EMBEDDER_FILE, GALLERY_CACHE

log = logging.getLogger(__name__)


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


def open_set_scores(embedder, people: dict[str, list], size: int, options: VerifierOptions, seed):
    """Scores to tune a threshold on: half the held-out people form a gallery (their first
    image), the rest of their images are genuine probes and the other half's images impostors,
    each probe clean and under every distortion (a few hundred images alone made the threshold
    jump between runs). Returns (best similarity, 1 for a known person)."""

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
    with run_lock(t.output_dir):
        return _fit_verifier(config, options, verbose, overwrite, start)


def _fit_verifier(config: RunConfig, options: VerifierOptions, verbose, overwrite: bool,
                  start: float) -> dict:  # fmt: skip
    """train_verifier's work, in its locked output folder."""

    d, t = config.data, config.train
    triplet = options.loss == "triplet"
    out = prepare_run_dir(t.output_dir, overwrite=overwrite)  # refuses a classifier run
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
    threshold = threshold_at_far(labels, scores, options.far)
    held_out = verification_metrics(labels, scores, threshold, top1_correct=[])
    save_model(embedder, out / EMBEDDER_FILE)
    ensure_room_for(get_base(embedder), out / BASE_WEIGHTS, with_optimizer=False)
    with replacing(out / BASE_WEIGHTS) as temp:
        get_base(embedder).save_weights(temp)
    card = {
        "image_size": size, "embedding_dim": int(embedder.output_shape[-1]),
        "face_crop": asdict(crop) if crop else None, "threshold": threshold,
        "threshold_source": f"false accept rate {options.far:g} on held-out people",
        "far": options.far,
        "held_out_metrics": {k: v for k, v in held_out.items() if k != "top1_accuracy"},
        "aggregate": options.aggregate, "train_people": train_names,
        "held_out_people": sorted(held), "loss": losses,
        "seconds": time.perf_counter() - start, "config": config.to_dict(),
        "options": options.__dict__,
    }  # fmt: skip
    write_json(card, out / CARD_FILE)
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
