"""Face verification: unit-norm embeddings, a short training on synthetic people, matching,
thresholds, the commands, and the base that starts a classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import people_tree
from PIL import Image

from gender_cls.config import AugmentConfig, DataConfig, ModelConfig, RunConfig, TrainConfig


@pytest.fixture(scope="module")
def verifier(tmp_path_factory):
    from gender_cls.verification import VerifierOptions, train_verifier

    root = tmp_path_factory.mktemp("people")
    data = people_tree(root / "ids", 12, 8)
    config = RunConfig(DataConfig(str(data), image_size=48, batch_size=16),
                       AugmentConfig.off(), ModelConfig(weights="none", alpha=0.35),
                       TrainConfig(output_dir=str(root / "run"), head_epochs=30, lr=3e-3))  # fmt: skip
    card = train_verifier(config, VerifierOptions(embedding_dim=32, val_people=0.34))
    return root / "run", card, data


def test_embeddings_have_unit_norm():
    from gender_cls.verification import build_embedder

    config = RunConfig(model=ModelConfig(weights="none", alpha=0.35))
    embedder = build_embedder(config, 48, 16)
    vectors = embedder.predict(np.random.default_rng(0).uniform(0, 255, (5, 48, 48, 3)), verbose=0)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    import tensorflow as tf

    from gender_cls.verification import unit_embeddings

    image = np.random.default_rng(1).uniform(0, 255, (1, 48, 48, 3)).astype(np.float32)
    pair = tf.data.Dataset.from_tensor_slices(np.concatenate([image, image[:, :, ::-1]])).batch(2)
    averaged = unit_embeddings(embedder, pair, flip=True)
    np.testing.assert_allclose(np.linalg.norm(averaged, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(averaged[0], averaged[1], atol=1e-5)  # mirror images: one vector


def test_metrics_and_threshold_on_a_constructed_case():
    from gender_cls.thresholds import tune_threshold
    from gender_cls.verification import tar_at_far, verification_metrics

    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.75, 0.7, 0.4, 0.3, 0.2, 0.65])
    threshold = tune_threshold(labels, scores, "balanced_accuracy")
    assert 0.65 < threshold <= 0.7
    m = verification_metrics(labels, scores, threshold, [True, True, False])
    assert (
        m["accuracy"] == 1.0 and m["roc_auc"] == 1.0 and m["top1_accuracy"] == pytest.approx(2 / 3)
    )
    assert tar_at_far(labels, scores, 0.0) == 1.0


def test_semi_hard_triplet_loss_matches_its_definition():
    from gender_cls.verification import semi_hard_triplet_loss

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
def test_train_verifier_command_with_triplets_and_a_group_that_does_not_divide_the_batch(
    tmp_path,
):
    from gender_cls.cli import train_verifier_command

    data = people_tree(tmp_path / "ids", 6, 6)
    args = ["--data_path", str(data), "--output_dir", str(tmp_path / "run"), "--image_size", "48",
            "--backbone", "efficientnet_lite0", "--batch_size", "12", "--epochs", "2",
            "--embedding_dim", "16", "--loss", "triplet",
            "--val_people", "0.34", "--distort_probability", "0.2"]  # fmt: skip
    refused = CliRunner().invoke(train_verifier_command, [*args, "--images_per_person", "5"])
    assert refused.exit_code == 2 and "divide --batch_size 12" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    result = CliRunner().invoke(train_verifier_command, [*args, "--images_per_person", "3"])
    assert result.exit_code == 0, result.output
    assert "held-out people (probes clean and distorted): ROC AUC" in result.output
    card = json.loads((tmp_path / "run" / "verifier.json").read_text())
    assert card["options"]["loss"] == "triplet" and card["options"]["flip_average"]
    assert np.isfinite(card["loss"]).all() and 0 <= card["held_out_metrics"]["roc_auc"] <= 1
    assert (tmp_path / "run" / "embedder.keras").is_file()


@pytest.mark.slow
def test_a_distorted_image_stays_closer_to_itself_than_to_another_person(verifier):
    """Over every pair of held-out people (never trained on): an image's noisy copy is closer
    to it, on average and in most pairs, than the other person's image."""
    from gender_cls.distort import distort
    from gender_cls.verification import load_verifier

    run, card, data = verifier
    embedder, _ = load_verifier(run)
    rng = np.random.default_rng(5)
    held = card["held_out_people"]
    first = {n: np.asarray(Image.open(sorted((data / n).iterdir())[0])) for n in held}
    own, other = [], []
    for name in held:
        for stranger in held:
            if stranger != name:
                a = first[name]
                batch = np.stack([a, distort(a, "noise", rng), first[stranger]]).astype(np.float32)
                e = embedder.predict(batch, verbose=0)
                own.append(e[0] @ e[1])
                other.append(e[0] @ e[2])
    own, other = np.asarray(own), np.asarray(other)
    assert own.mean() > other.mean() + 0.05 and (own > other).mean() > 0.5
    assert other.mean() < 0.99  # the embeddings have not collapsed onto one point


@pytest.mark.slow
def test_verify_and_evaluate_verifier_commands(verifier, tmp_path):
    from gender_cls.cli import distort_command, evaluate_verifier_command, verify_command

    run, card, data = verifier
    held = card["held_out_people"]
    gallery = tmp_path / "gallery"
    for name in held[:-1]:  # the last held-out person stays unknown
        (gallery / name).mkdir(parents=True)
        first = sorted((data / name).iterdir())[0]
        (gallery / name / first.name).write_bytes(first.read_bytes())
    own = sorted((gallery / held[0]).iterdir())[0]
    result = CliRunner().invoke(verify_command, ["--model_path", str(run), "--gallery",
                                                 str(gallery), "--probe", str(own), "--json"])  # fmt: skip
    record = json.loads(result.stdout)
    assert record["identity"] == held[0] and record["similarity"] > 0.99 and record["match"] == 1
    strict = json.loads((run / "verifier.json").read_text())
    strict["threshold"] = 1.01  # nothing can reach it: every probe is "no match"
    (tmp_path / "strict").mkdir()
    for name in ("embedder.keras", "base.weights.h5"):
        (tmp_path / "strict" / name).write_bytes((run / name).read_bytes())
    (tmp_path / "strict" / "verifier.json").write_text(json.dumps(strict))
    result = CliRunner().invoke(verify_command, ["--model_path", str(tmp_path / "strict"),
                                                 "--gallery", str(gallery), "--probe", str(own)])  # fmt: skip
    assert result.output.startswith("no match (unknown person)")
    probes = tmp_path / "probes"
    source = tmp_path / "source"
    for name in held:
        (source / name).mkdir(parents=True)
        for image in sorted((data / name).iterdir())[1:]:
            (source / name / image.name).write_bytes(image.read_bytes())
    CliRunner().invoke(distort_command, [str(source), str(probes), "--kinds", "blur,noise"])
    out = tmp_path / "results"
    result = CliRunner().invoke(evaluate_verifier_command, ["--model_path", str(run), "--gallery",
                                str(gallery), "--probes", str(probes), "--output_dir", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_kind"]) == {"blur", "noise"}
    assert metrics["overall"]["probes"] == len(held) * 7 * 2
    for name in ("predictions.csv", "similarity_histogram.png", "roc_curve.png"):
        assert (out / name).is_file(), name
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for probe in (empty, tmp_path / "missing.jpg"):
        result = CliRunner().invoke(verify_command, ["--model_path", str(run), "--gallery",
                                                     str(gallery), "--probe", str(probe)])  # fmt: skip
        assert result.exit_code == 2 and probe.name in result.output, result.output
        assert "Traceback" not in result.output
    (gallery / held[0] / "zero.jpg").write_bytes(b"")
    result = CliRunner().invoke(evaluate_verifier_command, ["--model_path", str(run), "--gallery",
                                str(gallery), "--probes", str(probes), "--output_dir", str(out)])  # fmt: skip
    assert result.exit_code == 2 and "zero.jpg: cannot read image" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.slow
def test_gallery_embeddings_are_cached_per_image(verifier, tmp_path, monkeypatch, caplog):
    import shutil

    from gender_cls import verification

    run, card, data = verifier
    gallery = tmp_path / "gallery"
    for person in card["held_out_people"]:
        shutil.copytree(data / person, gallery / person)
    embedder, _ = verification.load_verifier(run)
    fresh = verification.gallery_embeddings(embedder, gallery, 48, True)
    embedded = []
    real_embed = verification.embed
    monkeypatch.setattr(verification, "embed",
                        lambda model, paths, *args: embedded.append(len(paths)) or
                        real_embed(model, paths, *args))  # fmt: skip
    cache = verification.gallery_cache_file(run, gallery)

    def cached():
        embedded.clear()
        vectors = verification.gallery_embeddings(embedder, gallery, 48, True, cache)
        assert vectors.keys() == fresh.keys()
        return vectors

    cached()
    assert embedded == [sum(len(v) for v in fresh.values())] and cache.is_file()
    again = cached()
    assert embedded == [] and all(np.allclose(again[n], fresh[n], atol=1e-5) for n in fresh)
    person = sorted(fresh)[0]
    shutil.copy(next((gallery / person).iterdir()), gallery / person / "new.png")
    assert len(cached()[person]) == len(fresh[person]) + 1 and embedded == [1]

    for damage in (cache.read_bytes()[:100], b""):  # truncated, empty: dropped and rebuilt
        cache.write_bytes(damage)
        assert cached().keys() == fresh.keys() and embedded == [len(list(gallery.rglob("*.png")))]
        assert np.load(cache)["vectors"].shape[0] == embedded[0]
    assert caplog.text.count("damaged gallery cache") == 2

    shutil.rmtree(cache.parent)
    cache.parent.write_text("in the way")  # an unwritable cache warns and still answers
    assert cached().keys() == again.keys() and "could not cache" in caplog.text


@pytest.mark.slow
def test_the_verifiers_base_starts_a_classifier(verifier):
    from gender_cls.models import build_classifier, get_base
    from gender_cls.verification import load_verifier

    run, _, _ = verifier
    classifier = build_classifier(ModelConfig(weights=str(run / "base.weights.h5"), alpha=0.35),
                                  2, 48)  # fmt: skip
    embedder, _ = load_verifier(run)
    for ours, theirs in zip(get_base(classifier).get_weights(), get_base(embedder).get_weights(),
                            strict=True):  # fmt: skip
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
def test_train_verifier_refuses_to_overwrite_another_run(tmp_path, trained_run):
    from gender_cls.errors import UserError
    from gender_cls.verification import CARD_FILE, VerifierOptions, train_verifier

    for existing in (trained_run.run_dir, tmp_path / "verifier"):  # a classifier, a verifier
        if existing == tmp_path / "verifier":
            existing.mkdir()
            (existing / CARD_FILE).write_text("{}")
        config = RunConfig(DataConfig(str(tmp_path)), train=TrainConfig(output_dir=str(existing)))
        with pytest.raises(UserError, match="already holds"):
            train_verifier(config, VerifierOptions())
    assert (trained_run.run_dir / "model.keras").is_file()


@pytest.mark.parametrize("option", ["--embedding_dim", "--batch_size"])
def test_train_verifier_refuses_zero_before_any_work(tmp_path, option):
    from gender_cls.cli import train_verifier_command

    args = ["--data_path", str(tmp_path), "--output_dir", str(tmp_path / "run"), option, "0"]
    result = CliRunner().invoke(train_verifier_command, args)
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
