"""tf.data pipelines: parallel decode, shuffle, oversampling, batch, augment, prefetch."""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import tensorflow as tf

from gender_cls.config import AugmentConfig
from gender_cls.data.augment.in_pipeline import augment_op, load_augmented_op
from gender_cls.data.images import ImageReadError, load_image
from gender_cls.data.index import Split

AUTOTUNE = tf.data.AUTOTUNE
SPARE = 2  # passes over the files an epoch may use when some of them break after the check
assert_cardinality = tf.data.experimental.assert_cardinality


def encode_labels(labels: list[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """Targets for the model: [N, 1] floats for 2 classes (sigmoid), one-hot for more (softmax)."""
    labels = np.asarray(labels, dtype=np.int64)
    if num_classes == 2:
        return labels.astype(np.float32)[:, None]
    return np.eye(num_classes, dtype=np.float32)[labels]


def path_tensors(paths) -> list[bytes]:
    """Paths as TensorFlow takes them: the file system's bytes, so that a name that is not
    UTF-8 (os.listdir gives it with surrogate escapes) reaches the decoder intact."""
    return [os.fsencode(p) for p in paths]


def decode_op(image_size: int, resize: str = "stretch", failures: set[str] | None = None):
    """A tf function: path bytes -> uint8 image [size, size, 3], decoded by load_image. With
    `failures`, a file that cannot be read adds its path there and gives a blank image instead of
    an error (prediction marks its row)."""

    def decode(path: bytes) -> np.ndarray:
        try:
            return load_image(os.fsdecode(path), image_size, resize)
        except ImageReadError:
            if failures is None:
                raise
            failures.add(os.fsdecode(path))
            return np.zeros((image_size, image_size, 3), np.uint8)

    def op(path: tf.Tensor) -> tf.Tensor:
        image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
        image.set_shape([image_size, image_size, 3])
        return image

    return op


def _decoded(ds: tf.data.Dataset, image_size: int, resize: str) -> tf.data.Dataset:
    """(path, target) -> (uint8 image, target) in parallel; unreadable files are dropped."""
    decode = decode_op(image_size, resize)
    ds = ds.map(lambda p, t: (decode(p), t), num_parallel_calls=AUTOTUNE)
    return ds.ignore_errors(log_warning=True)


def _source(paths, targets, image_size, resize, cache, shuffle_seed, passes=1) -> tf.data.Dataset:
    """(path, target) pairs, `passes` times over, each pass shuffled anew when `shuffle_seed` is
    given; with `cache`, the images are decoded once, kept in memory and shuffled after (then the
    first element is the image)."""
    ds = tf.data.Dataset.from_tensor_slices((path_tensors(paths), targets))
    if cache:
        ds = _decoded(ds, image_size, resize).cache()
    if shuffle_seed is None:
        return ds.repeat(passes)
    return _shuffled_passes(ds, min(len(paths), 10_000), shuffle_seed, passes)


def _shuffled_passes(ds, buffer: int, seed: int, passes: int) -> tf.data.Dataset:
    """`passes` passes over `ds`, each in its own order; each iterator draws one key (a new one
    per epoch) and pass p is shuffled with a seed made of the key and p (the key cut to 40 bits
    so that key * 2**20 + p stays an int64 for up to 2**20 passes).

    Written instead of shuffle(reshuffle_each_iteration=True).repeat(passes): there every pass
    draws its order from a generator shared by all iterators of the dataset. Keras (JAX) opens
    an iterator to build the model, takes one batch and drops it, and how far that iterator's
    parallel decoding had read ahead into a second pass decided the next epoch's order: one
    seed, two trainings, at random."""
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return keys.flat_map(
        lambda key: tf.data.Dataset.range(passes).flat_map(
            lambda p: ds.shuffle(buffer, seed=key % 2**40 * 2**20 + p)
        )
    )


def _load(ds, image_size, resize, decoded: bool, augment: AugmentConfig | None, seed: int):
    """Decode paths (unless cached) and augment, in one parallel step per image.

    Without a cache, decode and augmentation run in one call and the resize is folded into the
    augmentation's warp. A file that breaks after check_readable is dropped, not fatal.
    """
    if augment is None:
        return ds if decoded else _decoded(ds, image_size, resize)
    op = augment_op(augment) if decoded else load_augmented_op(image_size, resize, augment)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, seeds).map(
        lambda xy, s: (op(xy[0], s), xy[1]), num_parallel_calls=AUTOTUNE
    )
    return ds.ignore_errors(log_warning=True)


def make_dataset(
    split: Split,
    num_classes: int,
    image_size: int,
    batch_size: int,
    *,
    training: bool = False,
    augment: AugmentConfig | None = None,
    oversample: bool = False,
    resize: str = "stretch",
    cache: bool = False,
    seed: int = 42,
    images_per_class: int = 0,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 pixels in [0, 255], targets) for fit(), evaluate() or predict().

    Training shuffles every epoch (deterministically for a seed); `oversample` draws the classes
    with equal probability and makes an epoch (largest class x number of classes) images;
    `images_per_class` K > 0 draws random classes K images at a time (for metric learning, whose
    batches need several images of one class), an epoch of as many images as the split.

    `shard` (process index, process count): `batch_size` is the global batch, and this process
    decodes only its slice of each (batch_size / count images), so the processes' batches
    together are the one-process batch; the last partial global batch is dropped so that every
    process takes as many steps.
    """
    targets = encode_labels(split.labels, num_classes)
    if not training:
        ds = _source(split.paths, targets, image_size, resize, cache, None)
        if shard:  # every process must take as many steps: a file that broke is an error
            ds, batch_size = _shard(ds, batch_size, shard)
            ds = _load(ds, image_size, resize, cache, None, seed)
            ds = ds.apply(assert_cardinality(len(split) // (batch_size * shard[1]) * batch_size))
        else:
            ds = _load(ds, image_size, resize, cache, None, seed)
    else:
        augment = None if augment is None or augment.is_identity else augment
        if images_per_class:
            ds = _grouped(split, targets, num_classes, images_per_class, image_size, resize,
                          cache, seed)  # fmt: skip
            epoch = len(split)
        elif oversample:
            ds, epoch = _oversampled(split, targets, num_classes, image_size, resize, cache, seed)
        else:
            ds = _source(split.paths, targets, image_size, resize, cache, seed, SPARE)
            epoch = len(split)
        if shard:
            epoch = epoch // batch_size * (batch_size // shard[1])
            ds, batch_size = _shard(ds, batch_size, shard)
            seed += shard[0]  # each process augments its slice with its own random draws
        # A longer stream, then take: an epoch keeps its length when a few files break; when
        # too many break the stream ends early and assert_cardinality fails (never an endless
        # search for readable images).
        ds = _load(ds, image_size, resize, cache, augment, seed).take(epoch)
        ds = ds.apply(assert_cardinality(epoch))
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(AUTOTUNE)


def _shard(ds: tf.data.Dataset, batch_size: int, shard: tuple[int, int]):
    """(this process's slice of every full run of `batch_size` elements, its size)."""
    index, count = shard
    if batch_size % count:
        raise ValueError(f"a global batch of {batch_size} does not split over {count} processes")
    local = batch_size // count
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda *xs: tuple(x[index * local : (index + 1) * local] for x in xs))
    return ds.unbatch(), local


def _repeated_classes(split, targets, num_classes, image_size, resize, cache, seed):
    """One shuffled (path, target) dataset per class, repeated SPARE times as often as an epoch
    of the whole split could draw from that class (finite: see make_dataset)."""
    labels = np.asarray(split.labels)
    per_class = []
    for label in range(num_classes):
        idx = np.flatnonzero(labels == label)
        paths = [split.paths[i] for i in idx]
        passes = SPARE * math.ceil(len(split) * num_classes / len(idx))
        per_class.append(
            _source(paths, targets[idx], image_size, resize, cache, seed + label, passes)
        )
    return per_class


def _grouped(split, targets, num_classes, k, image_size, resize, cache, seed):
    """Runs of K images of one class, the classes drawn at random."""
    per_class = _repeated_classes(split, targets, num_classes, image_size, resize, cache, seed)
    classes = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    choice = classes.map(lambda r: r % num_classes).flat_map(
        lambda c: tf.data.Dataset.from_tensors(c).repeat(k)
    )
    return tf.data.Dataset.choose_from_datasets(per_class, choice)


def _oversampled(split, targets, num_classes, image_size, resize, cache, seed):
    """Every class repeated and drawn with equal probability; returns (ds, epoch size)."""
    labels = np.asarray(split.labels)
    per_class = _repeated_classes(split, targets, num_classes, image_size, resize, cache, seed)
    epoch_size = int(np.bincount(labels, minlength=num_classes).max()) * num_classes
    weights = [1.0 / num_classes] * num_classes
    ds = tf.data.Dataset.sample_from_datasets(
        per_class, weights=weights, seed=seed, rerandomize_each_iteration=True
    )
    return ds, epoch_size


def predict_dataset(
    paths: list[str],
    image_size: int,
    batch_size: int,
    resize: str = "stretch",
    failures: set[str] | None = None,
) -> tf.data.Dataset:
    """Batches of float32 pixels for model.predict, in the order of `paths` (with `failures`,
    a blank image for each file that cannot be read, its path added there)."""
    decode = decode_op(image_size, resize, failures)
    images = tf.data.Dataset.from_tensor_slices(path_tensors(paths)).map(
        decode, num_parallel_calls=AUTOTUNE
    )
    return images.batch(batch_size).map(lambda x: tf.cast(x, tf.float32)).prefetch(AUTOTUNE)


def mixup(ds: tf.data.Dataset, alpha: float, seed: int) -> tf.data.Dataset:
    """Keras' MixUp on each training batch: images and targets blended with another image's."""

    layer = keras.layers.MixUp(alpha=alpha, seed=seed)

    def mix(images, targets):
        mixed = layer({"images": tf.cast(images, tf.float32), "labels": targets}, training=True)
        return mixed["images"], mixed["labels"]

    return ds.map(mix, num_parallel_calls=AUTOTUNE)
