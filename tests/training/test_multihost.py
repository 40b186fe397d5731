"""Training on several processes (JAX): one writer, bounded waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.helpers import JAX_ENV, REPO, free_port, make_image_tree

pytest.importorskip("jax")


ENV = {**os.environ, **JAX_ENV, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Data whose training split fills whole global batches of 8, and a base weights file."""
    from gender_cls.config import ModelConfig
    from gender_cls.models.classifier import build_classifier, get_base

    root = tmp_path_factory.mktemp("multihost")
    make_image_tree(root / "data" / "train", {"female": 12, "male": 12}, size=32, seed=1)
    make_image_tree(root / "data" / "val", {"female": 5, "male": 5}, size=32, seed=2)
    keras.utils.set_random_seed(0)
    config = ModelConfig(backbone="MobileNet", weights="none", alpha=0.25)
    classifier = build_classifier(config, 2, 32)
    base = get_base(classifier)
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float32)
                       for f in sorted((root / "data" / "train").rglob("*.png"))])  # fmt: skip
    calibrate_batch_norm(base, classifier.get_layer("preprocess")(pixels))
    base.save_weights(root / "base.weights.h5")
    return root


def calibrate_batch_norm(base: keras.Model, x) -> None:
    """Sets each BatchNorm's moving statistics to those of `x`, so that the randomly initialised
    base, used as a pretrained one (BatchNorm frozen), gives features that differ from image to
    image. With Keras' initial statistics its pooled features were about 1e-18 for every image:
    no gradient reached the base, and the weights compared differed by float noise alone."""
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # the moving statistics become this batch's
    base(x, training=True)


def train_args(root: Path, out: str, batch_size: int) -> list[str]:
    """One epoch per phase: with two, the loss of this tiny run is so flat that which head epoch
    EarlyStopping keeps could differ between one and two processes by float noise alone (their
    validation sets are batched differently), and with it the weights compared. No dropout:
    one process draws one mask for 8 images, two draw theirs for 4 each.

    SGD, not Adam: Adam's step is lr * m / sqrt(v), about lr whatever the gradient's size, so
    where a gradient is near zero its sign, float noise between one process's sum and two
    processes' all-reduce, moved a weight by +lr or -lr (55% of one layer's weights differed by
    up to 4.7e-3 in CI). SGD's step is proportional to the gradient, noise stays noise."""
    return [sys.executable, str(REPO / "train_model.py"), "--data_path", str(root / "data"),
            "--output_dir", str(root / out), "--weights", str(root / "base.weights.h5"),
            "--backbone", "MobileNet", "--alpha", "0.25", "--image_size", "32", "--batch_size", str(batch_size),
            "--head_epochs", "1", "--fine_tune_epochs", "1", "--fine_tune_layers", "6",
            "--head_units", "32", "--dropout", "0",
            "--optimizer", "sgd", "--lr", "0.05", "--fine_tune_lr", "0.01",
            "--no_augment", "--seed", "3", "--loss", "focal"]  # fmt: skip


def cluster_args(port: int, process_id: int, timeout: int = 60) -> list[str]:
    return ["--coordinator", f"127.0.0.1:{port}", "--num_processes", "2", "--process_id",
            str(process_id), "--peer_timeout", str(timeout)]  # fmt: skip


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str]:
    """(exit code, output); a process still running after `timeout` s is killed: a hang fails."""
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        pytest.fail(f"still running after {timeout} s:\n{out[-3000:]}")
    return process.returncode, out


def trained(run: Path) -> keras.Model:
    return keras.saving.load_model(run / "model.keras", compile=False)


def max_change(root: Path, model: keras.Model) -> float:
    """The largest change of a base weight of `model` from the base weights file its run
    started from."""
    from gender_cls.models.classifier import get_base

    base = get_base(model)
    start = keras.models.clone_model(base)
    start.load_weights(root / "base.weights.h5")
    pairs = zip(base.get_weights(), start.get_weights(), strict=True)
    return max(float(np.abs(a - b).max()) for a, b in pairs)


@pytest.mark.slow
def test_two_processes_train_the_weights_one_process_trains_and_write_the_run_once(setup):
    port = free_port()  # the three processes run at once: the cluster's two wait on each other
    two = [start([*train_args(setup, "two", 4), *cluster_args(port, i)]) for i in (1, 0)]
    one = start([*train_args(setup, "one", 8), "--export", "none"])
    (code1, out1), (code0, out0) = finish(two[0], 300), finish(two[1], 300)
    code, out = finish(one, 300)
    assert code == 0, out[-3000:]
    assert code0 == 0, out0[-3000:]
    assert code1 == 0, out1[-3000:]
    assert "batch: 4 per process, 8 in all" in out0
    assert "process 1: trained with process 0, which wrote" in out1

    reference = trained(setup / "one")
    for a, b in zip(reference.get_weights(), trained(setup / "two").get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4,
                                   err_msg=f"ONE:\n{out[-4000:]}\nTWO:\n{out0[-4000:]}")  # fmt: skip
    # fine-tuning moved the base far past the tolerance
    assert max_change(setup, reference) > 10 * 1e-4
    run = setup / "two"
    names = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}
    assert {"model.keras", "model.json", "model.tflite", "split.json", "config.json",
            "state.json", "history.csv"} <= names  # fmt: skip
    assert not [n for n in names if ".tmp" in n]
    card = json.loads((run / "model.json").read_text())
    assert card["exports"]["tflite"]["max_abs_diff_vs_keras"] < 1e-4  # exported under TF
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1"]  # one writer: each epoch logged once


@pytest.mark.slow
def test_a_missing_peer_is_a_one_line_error_within_the_timeout(setup):
    began = time.monotonic()
    alone = start([*train_args(setup, "alone", 4), *cluster_args(free_port(), 0, timeout=5)])
    code, out = finish(alone, 120)
    assert code == 2 and time.monotonic() - began < 90
    assert out.strip().splitlines()[-1].startswith("error: could not join 2 processes at 127.0")
    assert not (setup / "alone" / "model.keras").exists()


@pytest.mark.slow
def test_when_a_peer_dies_the_other_stops_within_the_timeout(setup):
    port = free_port()
    survivor = start([*train_args(setup, "died", 4), *cluster_args(port, 0, timeout=10)])
    victim = start([*train_args(setup, "died", 4), *cluster_args(port, 1, timeout=10)])
    deadline = time.monotonic() + 240
    while not (setup / "died" / "split.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    victim.kill()
    victim.wait()
    killed_at = time.monotonic()
    code, out = finish(survivor, 180)
    assert code != 0 and time.monotonic() - killed_at < 120
    assert "another task died" in out or "heartbeat" in out, out[-3000:]


@pytest.mark.parametrize("args, message", [
    (("h:1", 2, None), "2 processes need --coordinator HOST:PORT and --process_id"),
    (("h:1", 2, 2), "--process_id 2 must be 0 to 1"),
    (("host", 2, 0), "must be HOST:PORT"),
])  # fmt: skip
def test_cluster_options_are_checked(args, message, monkeypatch):
    from gender_cls.errors import UserError
    from gender_cls.training import multihost

    for name in (multihost.ENV_ADDRESSES, multihost.ENV_COUNT, multihost.ENV_ID):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match=message):
        multihost.cluster_from(*args)
    assert multihost.cluster_from(None, 1, None) is None
    monkeypatch.setenv(multihost.ENV_ADDRESSES, "10.0.0.1:9999,10.0.0.2:9999")
    monkeypatch.setenv(multihost.ENV_COUNT, "2")
    monkeypatch.setenv(multihost.ENV_ID, "1")
    assert multihost.cluster_from(None, None, None) == multihost.Cluster("10.0.0.1:9999", 2, 1)
