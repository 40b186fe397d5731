"""dlib's face ResNet in Keras against dlib itself (dlib-bin, a test dependency only): the same
descriptor on dlib's own chips, and the toolkit's crop close to dlib's whole pipeline."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import SHARED_DATA

from gender_cls import dlib_dat, dlib_resnet, faces
from gender_cls.errors import UserError
from gender_cls.images import read_image

dlib = pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    """Converted weights go to a fresh Keras cache."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras"


def photos() -> list[np.ndarray]:
    """scikit-image's astronaut (always there) and a few LFW frames where ../shared is present."""
    from skimage import data as skimage_data

    found = [skimage_data.astronaut()]
    wild = sorted((SHARED_DATA / "faces-wild" / "val").glob("*/*.jpg"))[::50][:5]
    return found + [read_image(str(p)) for p in wild]


@pytest.fixture(scope="module")
def dlib_pipeline():
    """dlib's own chips (its detector, 5-point landmarks, get_face_chip 150 px, padding 0.25)
    and its descriptors, per photo with a face."""
    models = dlib_resnet.wheel_file().parent
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(dlib_resnet.wheel_file()))
    rows = []
    for rgb in photos():
        found = detector(rgb, 1)
        if found:
            chip = np.asarray(dlib.get_face_chip(rgb, landmarks(rgb, found[0]), 150, 0.25))
            rows.append((rgb, chip, np.asarray(net.compute_face_descriptor(chip))))
    assert rows, "dlib found no face in the astronaut"
    return rows


def descriptors(chips) -> np.ndarray:
    model = dlib_resnet.build(150)
    dlib_resnet.load_pretrained(model)
    x = dlib_resnet.preprocess(np.stack(chips).astype(np.float32))
    return model.predict(x, verbose=0).mean(axis=(1, 2))


def test_the_keras_network_gives_dlibs_descriptor_on_dlibs_chips(dlib_pipeline):
    ours = descriptors([chip for _, chip, _ in dlib_pipeline])
    theirs = np.stack([reference for _, _, reference in dlib_pipeline])
    worst = np.abs(ours - theirs).max(axis=1)
    assert worst.max() < 1e-4, worst


def test_the_toolkits_dlib_crop_keeps_the_descriptor_of_dlibs_pipeline(dlib_pipeline):
    detector = faces.BlazeFace()
    crops = []
    for rgb, _, _ in dlib_pipeline:
        face = faces.detect_largest(detector, rgb)
        crops.append(faces.align(rgb, face, 150, 0.25, "dlib"))
    ours = descriptors(crops)
    theirs = np.stack([reference for _, _, reference in dlib_pipeline])
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() > 0.97, cosine


def test_a_network_other_than_the_expected_one_is_refused_by_layer():
    network = dlib_dat.read_network(dlib_resnet.wheel_file())
    model = dlib_resnet.build(150)
    moved = dict(network.layers[4].settings, stride_y=2)
    layers = list(network.layers)
    layers[4] = dlib_dat.Layer("con", moved, network.layers[4].tensors)
    with pytest.raises(UserError, match=r"dlib layer 4 \(level1_block1_conv1\): stride_y 2"):
        dlib_resnet.load_dlib_weights(model, dlib_dat.Network(network.loss, network.input_size,
                                                              network.mean_rgb, layers))  # fmt: skip
    with pytest.raises(UserError, match="of 107 layers, 108 expected"):
        dlib_resnet.load_dlib_weights(model, dlib_dat.Network(network.loss, network.input_size,
                                                              network.mean_rgb, layers[:-1]))  # fmt: skip


def test_other_sizes_build_and_the_cache_heals(keras_home, caplog):
    small = dlib_resnet.build_base(112, "imagenet", embedding=False)  # shapes meet unevenly here
    cached = dlib_resnet.cache_path(dlib_resnet.wheel_file(), embedding=False)
    assert cached.parent == keras_home / "models" and cached.is_file()
    assert small.output.shape[1:] == (1, 1, 256)
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        healed = dlib_resnet.build_base(150, "imagenet", embedding=False)
    assert "unreadable" in caplog.text
    np.testing.assert_array_equal(healed.weights[0].numpy(), small.weights[0].numpy())
    with pytest.raises(UserError, match="too small for dlib_face_resnet"):
        dlib_resnet.build(96)


def test_cards_name_their_template_and_older_cards_mean_arcface():
    from gender_cls.artifacts import ModelCard

    card = {"class_names": ["female", "male"], "image_size": 150}
    old = ModelCard.from_dict({**card, "face_crop": {"detector": "blazeface", "margin": 0.25}})
    assert old.face_crop.template == "arcface"
    with pytest.raises(UserError, match="'blazeface' / 'mediapipe': the detector must be one of"):
        ModelCard.from_dict({**card, "face_crop": {"detector": "blazeface", "margin": 0.25,
                                                   "template": "mediapipe"}})  # fmt: skip
    from gender_cls.verification import face_crop_of

    with pytest.raises(UserError, match=r"verifier.json: face_crop must be \{detector, margin"):
        face_crop_of({"face_crop": {"detector": "blazeface", "size": 3}})


@pytest.mark.slow
def test_the_faces_recipe_crops_as_dlib_from_training_to_a_cold_prediction(tmp_path):
    """--recipe faces-offline on a few photos of a face: the card records dlib's crop, the TFLite
    export matches Keras, and predict.py finds and crops the face with no flag."""
    import json

    from click.testing import CliRunner
    from conftest import write_image

    from gender_cls.cli import predict_command, train_command

    astronaut = photos()[0]
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3)):
        for label in ("female", "male"):
            for i in range(count):
                dy, dx = rng.integers(0, 60, 2)
                photo = astronaut[dy : dy + 440, dx : dx + 440]
                write_image(tmp_path / "data" / split / label / f"{i}.png",
                            photo[:, ::-1] if label == "male" else photo)  # fmt: skip
    run = tmp_path / "run"
    args = ["--data_path", str(tmp_path / "data"), "--output_dir", str(run), "--recipe",
            "faces-offline", "--head_epochs", "2"]  # fmt: skip
    trained = CliRunner().invoke(train_command, args)
    assert trained.exit_code == 0, trained.output
    card = json.loads((run / "model.json").read_text())
    assert card["face_crop"] == {"detector": "blazeface", "margin": 0.25, "template": "dlib"}
    assert card["image_size"] == 150 and card["exports"]["tflite"]["max_abs_diff_vs_keras"] < 1e-4
    photo = write_image(tmp_path / "astronaut.png", astronaut)
    predicted = CliRunner().invoke(predict_command, ["--image_path", str(photo), "--model_path",
                                                     str(run), "--json"])  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    record = json.loads(predicted.stdout)[0]
    assert record["face_found"] is True and len(record["face_box"]) == 4


@pytest.mark.slow
def test_an_untrained_verifier_embeds_as_dlib_through_the_aligned_face(tmp_path):
    """train-verifier --epochs 0 (the default for this backbone): the embedder is dlib's
    descriptor, unit-normalised, of the face dlib's template aligns; the run records the crop."""
    from click.testing import CliRunner
    from conftest import people_tree, write_image

    from gender_cls.cli import train_verifier_command
    from gender_cls.verification import embed, face_crop_of, load_verifier

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
    face = faces.detect_largest(faces.BlazeFace(), photos()[0])
    chip = faces.align(photos()[0], face, 150, 0.25, "dlib")
    theirs = descriptors([chip])[0]
    np.testing.assert_allclose(ours, theirs / np.linalg.norm(theirs), atol=1e-3)


def test_the_jax_backend_computes_the_same_descriptor(keras_home, tmp_path):
    """The network and its converted weights on KERAS_BACKEND=jax, in a process of its own,
    against TensorFlow's descriptor of the same chip."""
    import os
    import subprocess
    import sys

    chip = photos()[0][100:250, 160:310].astype(np.float32)  # any 150 px image will do
    np.save(tmp_path / "chip.npy", chip)
    script = (
        "import sys, numpy as np\n"
        "from gender_cls import dlib_resnet\n"
        "model = dlib_resnet.build(150)\n"
        "dlib_resnet.load_pretrained(model)\n"
        "x = dlib_resnet.preprocess(np.load(sys.argv[1])[None])\n"
        "np.save(sys.argv[2], np.asarray(model(x)).mean(axis=(1, 2)))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    args = [sys.executable, "-c", script, str(tmp_path / "chip.npy"), str(tmp_path / "jax.npy")]
    subprocess.run(args, env=env, check=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy")[0], descriptors([chip])[0], atol=1e-5)


@pytest.mark.slow
def test_distillation_trains_towards_the_clean_embedding_and_needs_an_own_embedding(tmp_path):
    from click.testing import CliRunner
    from conftest import people_tree

    from gender_cls.cli import train_verifier_command
    from gender_cls.config import ModelConfig, RunConfig
    from gender_cls.data import Split
    from gender_cls.verification import build_embedder, distillation_data, embed, load_verifier

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
