"""The embedding model and its losses: the backbone pooled to unit vectors, CosFace's margin layer,
semi-hard triplets, distillation targets; embedding image files through the face crop."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gender_cls.config import FaceCrop, RunConfig, VerifierOptions
from gender_cls.data.images import ImageReadError, read_image
from gender_cls.data.index import (
    Split,
)
from gender_cls.data.pipeline import make_dataset, predict_dataset
from gender_cls.errors import UserError
from gender_cls.faces.cache import CropCache, default_cache_dir
from gender_cls.models.backbones import get_backbone
from gender_cls.models.classifier import get_base, pooled_features


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

    own = get_backbone(config.model.backbone).embedder is not None
    inputs, x, _ = pooled_features(config.model, image_size, embedding=own)
    if own:
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


def unit_embeddings(embedder: keras.Model, batches, flip: bool) -> np.ndarray:
    """Embeddings of a tf.data of image batches; with `flip`, the normalised mean of each
    image's and its mirror image's (a face is about symmetric: steadier than either alone)."""

    vectors = np.asarray(embedder.predict(batches, verbose=0), np.float32)
    if flip:
        vectors += embedder.predict(batches.map(lambda x: tf.reverse(x, [2])), verbose=0)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


def aligned(paths: list[str], crop: FaceCrop | None, image_size: int) -> list[str]:
    """Each image's aligned face (from the user's face cache, detected once), or the image itself
    where no face is found or `crop` is None."""
    return aligned_and_missing(paths, crop, image_size)[0]


def aligned_and_missing(paths: list[str], crop: FaceCrop | None,
                        image_size: int) -> tuple[list[str], list[str]]:  # fmt: skip
    """aligned(), and the images of `paths` in which no face was found (one pass of the cache)."""
    if crop is None:
        return list(paths), []
    results = CropCache(default_cache_dir(), crop, image_size).get_many(paths)
    missing = [r.source for r in results if r.crop is None and r.error is None]
    return [r.crop or r.source for r in results], missing


def embed(embedder: keras.Model, paths: list[str], image_size: int, flip: bool = False,
          crop: FaceCrop | None = None):  # fmt: skip
    """Unit-norm embeddings of image files (their aligned faces with `crop`), in order; an
    unreadable file is a UserError."""

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

    for path in paths:
        try:
            read_image(path, size_hint=32)
        except ImageReadError as error:
            raise UserError(f"{error}; replace or remove it") from None


def similarities(probes: np.ndarray, gallery: dict[str, np.ndarray], aggregate: str):
    """[probes, identities] cosine similarity of each probe to each identity's images."""
    reduce = np.max if aggregate == "max" else np.mean
    return np.stack([reduce(probes @ gallery[name].T, axis=1) for name in gallery], axis=1)
