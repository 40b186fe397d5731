"""tf.data pipelines: parallel decode, shuffle, oversampling, batch, augment, prefetch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gender_cls.augment import augment_op
from gender_cls.config import AugmentConfig
from gender_cls.data import Split
from gender_cls.images import load_image

AUTOTUNE = tf.data.AUTOTUNE
assert_cardinality = tf.data.experimental.assert_cardinality


def encode_labels(labels: list[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """Targets for the model: [N, 1] floats for 2 classes (sigmoid), one-hot for more (softmax)."""
    labels = np.asarray(labels, dtype=np.int64)
    if num_classes == 2:
        return labels.astype(np.float32)[:, None]
    return np.eye(num_classes, dtype=np.float32)[labels]


def decode_op(image_size: int, resize: str = "stretch"):
    """A tf function: path string -> uint8 image [size, size, 3], decoded by load_image."""

    def decode(path: bytes) -> np.ndarray:
        return load_image(path.decode(), image_size, resize)

    def op(path: tf.Tensor) -> tf.Tensor:
        image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
        image.set_shape([image_size, image_size, 3])
        return image

    return op


def _image_label_dataset(
    paths, targets, image_size, resize, cache, shuffle_seed=None
) -> tf.data.Dataset:
    """(uint8 image, target) pairs; shuffled each epoch when `shuffle_seed` is given.

    Without a cache the paths are shuffled before decoding (a cheap buffer); with one, the decoded
    images are cached once and shuffled after. A file that breaks after check_readable is dropped
    rather than stopping the run.
    """
    ds = tf.data.Dataset.from_tensor_slices((list(paths), targets))
    buffer = min(len(paths), 10_000)
    if shuffle_seed is not None and not cache:
        ds = ds.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    decode = decode_op(image_size, resize)
    ds = ds.map(lambda p, t: (decode(p), t), num_parallel_calls=AUTOTUNE)
    ds = ds.ignore_errors(log_warning=True)
    if cache:
        ds = ds.cache()
        if shuffle_seed is not None:
            ds = ds.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds


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
) -> tf.data.Dataset:
    """Batches of (float32 pixels in [0, 255], targets) for fit(), evaluate() or predict().

    Training shuffles every epoch (deterministically for a seed); `oversample` draws the classes
    with equal probability and makes an epoch (largest class x number of classes) images.
    """
    targets = encode_labels(split.labels, num_classes)
    if oversample and training:
        ds = _oversampled(split, targets, num_classes, image_size, resize, cache, seed)
    else:
        shuffle_seed = seed if training else None
        ds = _image_label_dataset(split.paths, targets, image_size, resize, cache, shuffle_seed)
        if training:  # a known epoch length (for progress bars) even if a file was dropped
            ds = ds.repeat().take(len(split)).apply(assert_cardinality(len(split)))
    if training and augment is not None and not augment.is_identity:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda xy, s: (augment_op(xy[0], augment, s), xy[1]), num_parallel_calls=AUTOTUNE
        )
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(AUTOTUNE)


def _oversampled(split, targets, num_classes, image_size, resize, cache, seed):
    labels = np.asarray(split.labels)
    per_class = []
    for label in range(num_classes):
        idx = np.flatnonzero(labels == label)
        paths = [split.paths[i] for i in idx]
        ds = _image_label_dataset(paths, targets[idx], image_size, resize, cache, seed + label)
        per_class.append(ds.repeat())
    epoch_size = int(np.bincount(labels, minlength=num_classes).max()) * num_classes
    weights = [1.0 / num_classes] * num_classes
    ds = tf.data.Dataset.sample_from_datasets(
        per_class, weights=weights, seed=seed, rerandomize_each_iteration=True
    )
    return ds.take(epoch_size).apply(assert_cardinality(epoch_size))


def predict_dataset(
    paths: list[str], image_size: int, batch_size: int, resize: str = "stretch"
) -> tf.data.Dataset:
    """Batches of float32 pixels for model.predict, in the order of `paths`."""
    decode = decode_op(image_size, resize)
    images = tf.data.Dataset.from_tensor_slices(list(paths)).map(
        decode, num_parallel_calls=AUTOTUNE
    )
    return images.batch(batch_size).map(lambda x: tf.cast(x, tf.float32)).prefetch(AUTOTUNE)
