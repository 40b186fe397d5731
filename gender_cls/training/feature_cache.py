"""Phase-1 feature cache: with the base frozen and no augmentation, run the base once per image
and train the head on its pooled features; the head's layers are shared with the full model."""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from gender_cls.data.index import Split
from gender_cls.data.pipeline import encode_labels

log = logging.getLogger(__name__)
POOL_LAYER = "pool"


def split_model(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(features: image -> pooled base output, head: features -> output), sharing the layers."""
    pool = model.get_layer(POOL_LAYER)
    features = keras.Model(model.input, pool.output, name="features")
    head_input = keras.Input(pool.output.shape[1:], name="features")
    x = head_input
    for layer in model.layers[model.layers.index(pool) + 1 :]:
        x = layer(x)
    return features, keras.Model(head_input, x, name="head")


def extract(features: keras.Model, images: tf.data.Dataset, verbose: int = 0) -> np.ndarray:
    """Pooled base features of every image of an unshuffled, unaugmented dataset."""
    return features.predict(images.map(lambda x, y: x), verbose=verbose)


def feature_dataset(
    feats: np.ndarray,
    split: Split,
    num_classes: int,
    batch_size: int,
    *,
    training: bool,
    oversample: bool = False,
    seed: int = 42,
) -> tf.data.Dataset:
    """Batches of (features, targets); training shuffles, and oversampling draws classes equally."""
    targets = encode_labels(split.labels, num_classes)
    if len(feats) != len(targets):
        raise RuntimeError("an image became unreadable while caching features; run again")
    if training and oversample:
        labels = np.asarray(split.labels)
        per_class = [
            tf.data.Dataset.from_tensor_slices((feats[labels == c], targets[labels == c]))
            .shuffle(int((labels == c).sum()), seed=seed + c)
            .repeat()
            for c in range(num_classes)
        ]
        epoch = int(np.bincount(labels, minlength=num_classes).max()) * num_classes
        ds = tf.data.Dataset.sample_from_datasets(
            per_class, [1 / num_classes] * num_classes, seed=seed, rerandomize_each_iteration=True
        ).take(epoch)
    else:
        ds = tf.data.Dataset.from_tensor_slices((feats, targets))
        if training:
            ds = ds.shuffle(len(feats), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
