"""The embedding model: unit vectors, the triplet loss, distortions stay close."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gender_cls.config import ModelConfig, RunConfig


def test_embeddings_have_unit_norm():
    from gender_cls.verify.embedding import build_embedder

    config = RunConfig(model=ModelConfig(weights="none", alpha=0.35))
    embedder = build_embedder(config, 48, 16)
    vectors = embedder.predict(np.random.default_rng(0).uniform(0, 255, (5, 48, 48, 3)), verbose=0)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    import tensorflow as tf

    from gender_cls.verify.embedding import unit_embeddings

    image = np.random.default_rng(1).uniform(0, 255, (1, 48, 48, 3)).astype(np.float32)
    pair = tf.data.Dataset.from_tensor_slices(np.concatenate([image, image[:, :, ::-1]])).batch(2)
    averaged = unit_embeddings(embedder, pair, flip=True)
    np.testing.assert_allclose(np.linalg.norm(averaged, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(averaged[0], averaged[1], atol=1e-5)  # mirror images: one vector


def test_semi_hard_triplet_loss_matches_its_definition():
    from gender_cls.verify.embedding import semi_hard_triplet_loss

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 12)
    vectors = rng.normal(size=(12, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    distance = np.maximum(2 - 2 * vectors @ vectors.T, 0)
    losses = []
    for a, p in np.argwhere(labels[:, None] == labels[None, :]):
        if a == p:
            continue
        negatives = distance[a, labels != labels[a]]
        semi_hard = negatives[negatives > distance[a, p]]
        chosen = semi_hard.min() if len(semi_hard) else negatives.max()
        losses.append(max(distance[a, p] - chosen + 0.2, 0.0))
    targets = np.eye(4, dtype=np.float32)[labels]
    got = float(semi_hard_triplet_loss(0.2)(targets, vectors))
    assert got == pytest.approx(np.mean(losses), rel=1e-5)


@pytest.mark.slow
def test_a_distorted_image_stays_closer_to_itself_than_to_another_person(verifier):
    """Over every pair of the people the verifier learned: an image's noisy copy is closer to
    it, on average and in nearly all pairs, than the other person's image. The learned people,
    not the held-out ones: this 8-person synthetic fixture does not generalise to new people
    (held-out ROC AUC 0.35-0.70 as measured over seeds, image orders and 20 or 30 epochs), so a
    held-out version passed or failed with the order of the training images; real held-out
    people are measured by the pairs protocol (tests/cli/test_verify.py, the README's figures).
    Measured here: 0.964 of the pairs pass after the fixture's 20 epochs (0.982 after 30)."""
    from gender_cls.data.augment.distort import distort
    from gender_cls.verify.verifier import load_verifier

    run, card, data = verifier
    embedder, _ = load_verifier(run)
    rng = np.random.default_rng(5)
    people = card["train_people"]
    first = {n: np.asarray(Image.open(sorted((data / n).iterdir())[0])) for n in people}
    own, other = [], []
    for name in people:
        for stranger in people:
            if stranger != name:
                a = first[name]
                batch = np.stack([a, distort(a, "noise", rng), first[stranger]]).astype(np.float32)
                e = embedder.predict(batch, verbose=0)
                own.append(e[0] @ e[1])
                other.append(e[0] @ e[2])
    own, other = np.asarray(own), np.asarray(other)
    assert own.mean() > other.mean() + 0.05 and (own > other).mean() > 0.9
    assert other.mean() < 0.99  # the embeddings have not collapsed onto one point
