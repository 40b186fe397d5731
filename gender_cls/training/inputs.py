"""What a run trains on: the split (checked, and shared across processes), the face crops, and the
tf.data datasets and model they feed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import keras

from gender_cls.artifacts.run_folder import (
    NO_FACE_FILE,
    SPLIT_FILE,
)
from gender_cls.atomic import write_text
from gender_cls.config import (
    AugmentConfig,
    FaceCrop,
    RunConfig,
)
from gender_cls.data.augment.in_model import resolve_placement, with_augmentation
from gender_cls.data.index import (
    DatasetIndex,
    check_readable,
    class_weights,
    discover,
    drop_unreadable,
    find_unreadable,
)
from gender_cls.data.pipeline import make_dataset, mixup
from gender_cls.faces.cache import CropCache, crop_split
from gender_cls.models.backbones import get_backbone
from gender_cls.models.classifier import (
    build_classifier,
    precision_policy,
)
from gender_cls.training import multihost

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """The split, the input size and the datasets a run trains on."""

    index: DatasetIndex
    image_size: int
    batch_size: int  # global: per-replica batch x replicas
    train_ds: object
    val_ds: object
    class_weights: dict[int, float] | None


def _load_index(config: RunConfig, run_dir: Path, resume: bool, cluster) -> DatasetIndex:
    split_file = run_dir / SPLIT_FILE
    if resume and split_file.is_file():  # the same split as before the interruption, re-checked
        return _checked(DatasetIndex.load(split_file), cluster)
    index = _checked(
        discover(config.data.data_path, config.data.val_split, config.data.seed), cluster
    )
    index.save(split_file)
    return index


def _checked(index: DatasetIndex, cluster: multihost.Cluster | None) -> DatasetIndex:
    """check_readable; with several processes each decodes its share of the files and they
    pool what they found."""
    if cluster is None:
        return check_readable(index)
    paths = index.all_paths()[cluster.process_id :: cluster.num_processes]
    found = multihost.allgather_json(find_unreadable(paths))
    return drop_unreadable(index, [tuple(bad) for part in found for bad in part])


def data_and_model(
    config: RunConfig,
    run_dir: Path,
    resume: bool,
    strategy,
    cluster: multihost.Cluster | None = None,
):
    """(datasets, classifier, the model fit() trains: the classifier, or a wrapper augmenting
    on the accelerator), seeded, built under `strategy` and the precision policy."""
    keras.utils.set_random_seed(config.data.seed)
    augment_on = resolve_placement(config.train.augment_on, config.augment)
    cpu_augment = config.augment if augment_on == "cpu" else None
    data = prepare_data(
        config, run_dir, resume, strategy.num_replicas_in_sync, cpu_augment, cluster
    )
    with precision_policy(config.train.mixed_precision), strategy.scope():
        model = build_classifier(config.model, data.index.num_classes, data.image_size)
        augmented = (
            with_augmentation(model, config.augment, config.data.seed)
            if augment_on == "gpu"
            else model
        )
    return data, model, augmented


def prepare_data(
    config: RunConfig,
    run_dir: Path,
    resume: bool,
    replicas: int,
    augment: AugmentConfig | None,
    cluster: multihost.Cluster | None = None,
) -> TrainingData:
    """Index and check the images; the training (augmented by `augment` in tf.data) and
    validation datasets."""
    d = config.data
    index = _load_index(config, run_dir, resume, cluster)
    log.info("data: %s\n%s", d.data_path, index.summary())
    image_size = d.image_size or get_backbone(config.model.backbone).default_size
    if d.face_crop:
        _crop_faces(index, config, run_dir, image_size)
    shard = (cluster.process_id, cluster.num_processes) if cluster else None
    batch_size = d.batch_size * (cluster.num_processes if cluster else replicas)  # global
    if cluster:
        log.info("batch: %d per process, %d in all", d.batch_size, batch_size)
    val_ds = make_dataset(index.splits["val"], index.num_classes, image_size, batch_size,
                          resize=d.resize, cache=d.cache, shard=shard)  # fmt: skip
    weights = None
    if d.class_weighted:
        weights = class_weights(index.splits["train"].labels, index.num_classes)
        log.info(
            "class weights: %s", {index.class_names[k]: round(v, 3) for k, v in weights.items()}
        )
    train_ds = make_dataset(
        index.splits["train"], index.num_classes, image_size, batch_size, training=True,
        augment=augment, oversample=d.oversample, resize=d.resize, cache=d.cache,
        seed=d.seed, shard=shard,
    )  # fmt: skip
    if config.train.mixup:
        train_ds = mixup(train_ds, config.train.mixup, d.seed)
    return TrainingData(index, image_size, batch_size, train_ds, val_ds, weights)


def face_crop(config: RunConfig) -> FaceCrop | None:
    """The run's face crop, its template "auto" resolved to the backbone's."""
    return config.data.face(get_backbone(config.model.backbone).face_template)


def _crop_faces(index: DatasetIndex, config: RunConfig, run_dir: Path, image_size: int) -> None:
    """Replace the train and val images by their aligned face crops (cached: detected once)."""
    d = config.data
    cache = CropCache(d.face_cache or run_dir / "face_cache", face_crop(config), image_size)
    not_found = []
    for name in ("train", "val"):
        index.splits[name], report = crop_split(index.splits[name], cache, d.face_fallback)
        log.info("face crop, %s: %s", name, report.summary())
        not_found += report.no_face
    if not_found:
        write_text(run_dir / NO_FACE_FILE, "\n".join(not_found) + "\n")
