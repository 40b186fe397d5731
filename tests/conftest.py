"""Fixtures: tiny synthetic image folders made in tmp_path, and the real data where present."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gender_cls.cli import evaluate_command, export_command, train_command  # noqa: E402
from gender_cls.config import (  # noqa: E402
    AugmentConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from gender_cls.faces import cropper  # noqa: E402
from tests.helpers import (  # noqa: E402
    BLANK,
    FACES,
    HOLD_LOCK,
    make_image_tree,
    people_tree,
    photos,
    serving,
    tiny_config,
    write_image,
)


@pytest.fixture
def split_tree(tmp_path: Path) -> Path:
    """A train/val/test layout with two classes."""
    root = tmp_path / "data"
    make_image_tree(root / "train", {"female": 12, "male": 8}, seed=1)
    make_image_tree(root / "val", {"female": 4, "male": 4}, seed=2)
    make_image_tree(root / "test", {"female": 4, "male": 4}, seed=3)
    return root


@pytest.fixture
def flat_tree(tmp_path: Path) -> Path:
    """A single <class>/ tree, split here."""
    return make_image_tree(tmp_path / "flat", {"cat": 10, "dog": 10, "fox": 10})


def made_once(tmp_path_factory, name: str, make):
    """`make(folder)`, once for the whole session: with pytest-xdist the first worker to ask
    makes it and the others (waiting at most 15 minutes) load what it pickled. What a fixture
    made this way returns is shared: a test that changes its files works on a copy."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    done = shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "a") as lock:
        deadline = time.monotonic() + 900
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{name}: still being made by another worker after 15 minutes")
                time.sleep(0.5)
        if done.is_file():
            return pickle.loads(done.read_bytes())
        folder = shared / name
        shutil.rmtree(folder, ignore_errors=True)  # a worker that failed making it
        folder.mkdir()
        value = make(folder)
        done.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="session")
def two_class_data(tmp_path_factory) -> Path:
    """train/val/test of two learnable synthetic classes, 64 px."""

    def make(root: Path) -> Path:
        make_image_tree(root / "train", {"female": 40, "male": 40}, size=64, seed=1)
        make_image_tree(root / "val", {"female": 12, "male": 12}, size=64, seed=2)
        make_image_tree(root / "test", {"female": 12, "male": 12}, size=64, seed=3)
        return root

    return made_once(tmp_path_factory, "two_class", make)


@pytest.fixture(scope="session")
def trained_run(two_class_data, tmp_path_factory):
    """One small model trained for the whole session (about 40 s on 2 cores), exported to
    TFLite as training does by default."""
    from gender_cls.training.run import train

    def make(folder: Path):
        config = tiny_config(two_class_data, folder / "run", head_epochs=8, patience=10,
                             export="tflite")  # fmt: skip
        return train(config, verbose=0)

    return made_once(tmp_path_factory, "trained_run", make)


@pytest.fixture
def captured(monkeypatch):
    """Runs train_command with training replaced by a recorder of the config it was given."""
    from gender_cls.training import run as training

    seen = {}

    def fake_train(config, **kwargs):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(training, "train", fake_train)

    def run(*args):
        result = CliRunner().invoke(train_command, ["--data_path", "DATA", *args])
        return result, seen.get("config")

    return run


@pytest.fixture
def locked_run(tmp_path):
    """A run folder whose lock another live process holds; yields (folder, process)."""
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        yield run, holder
    finally:
        holder.kill()
        holder.wait(timeout=30)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """Converted weights go to a fresh Keras cache."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras"


@pytest.fixture(scope="module")
def dlib_pipeline():
    """dlib's own chips (its detector, 5-point landmarks, get_face_chip 150 px, padding 0.25)
    and its descriptors, per photo with a face."""
    dlib = pytest.importorskip("dlib")
    from gender_cls.models.weights import dlib_resnet as dlib_weights

    models = dlib_weights.wheel_file().parent
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(dlib_weights.wheel_file()))
    rows = []
    for rgb in photos():
        found = detector(rgb, 1)
        if found:
            chip = np.asarray(dlib.get_face_chip(rgb, landmarks(rgb, found[0]), 150, 0.25))
            rows.append((rgb, chip, np.asarray(net.compute_face_descriptor(chip))))
    assert rows, "dlib found no face in the astronaut"
    return rows


@pytest.fixture(scope="session")
def evaluated(trained_run, two_class_data, tmp_path_factory):
    """test_script.py on the trained run: (its output folder, what it printed)."""

    def make(out: Path):
        args = ["--data_path", str(two_class_data / "test"), "--model_path",
                str(trained_run.run_dir), "--output_dir", str(out)]  # fmt: skip
        result = CliRunner().invoke(evaluate_command, args)
        assert result.exit_code == 0, result.output
        return out, result.output

    return made_once(tmp_path_factory, "evaluated", make)


@pytest.fixture(scope="session")
def exported_run(trained_run, tmp_path_factory):
    """A copy of the trained run with its TFLite and ONNX exports."""

    def make(folder: Path) -> Path:
        run = shutil.copytree(trained_run.run_dir, folder / "run")
        for fmt in ("tflite", "onnx"):
            result = CliRunner().invoke(export_command, ["--model_path", str(run), "--format", fmt])
            assert result.exit_code == 0, result.output
        return run

    return made_once(tmp_path_factory, "exported_run", make)


@pytest.fixture(scope="session")
def face_data(tmp_path_factory):
    """A few real faces per class and split, plus a blank image in the test split."""
    if not FACES.is_dir():
        pytest.skip(f"{FACES} not present")

    def make(root: Path) -> Path:
        for split, count in (("train", 8), ("val", 4), ("test", 4)):
            for label in ("female", "male"):
                for path in sorted((FACES / split / label).glob("*.jpg"))[:count]:
                    (root / split / label).mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, root / split / label / path.name)
        write_image(root / "test" / "female" / "blank.png", BLANK)
        return root

    return made_once(tmp_path_factory, "faces", make)


@pytest.fixture(scope="session")
def face_run(face_data, tmp_path_factory):
    """A tiny run trained with --face_crop, counting detector calls over its two epochs."""
    from gender_cls.training.run import train

    def make(folder: Path):
        calls = []
        original = cropper.detect_largest
        cropper.detect_largest = lambda d, rgb: calls.append(1) or original(d, rgb)
        try:
            config = tiny_config(face_data, folder / "run", head_epochs=2)
            config.data.face_crop = True
            result = train(config, verbose=0)
        finally:
            cropper.detect_largest = original
        return result, len(calls)

    return made_once(tmp_path_factory, "face_run", make)


@pytest.fixture(scope="module")
def server(trained_run):
    """`gender-cls serve` in its own process, batching for up to 200 ms."""
    with serving(trained_run.run_dir, "--max_wait_ms", "200") as (_, url, _):
        yield url


@pytest.fixture(scope="session")
def verifier(tmp_path_factory):
    """A small verifier trained on 12 synthetic people: (its run, its card, the people)."""
    from gender_cls.config import VerifierOptions
    from gender_cls.verify.train import train_verifier

    def make(root: Path):
        data = people_tree(root / "ids", 12, 8)
        config = RunConfig(DataConfig(str(data), image_size=48, batch_size=16),
                           AugmentConfig.off(), ModelConfig(weights="none", alpha=0.35),
                           TrainConfig(output_dir=str(root / "run"), head_epochs=20, lr=3e-3))  # fmt: skip
        card = train_verifier(config, VerifierOptions(embedding_dim=32, val_people=0.34))
        return root / "run", card, data

    return made_once(tmp_path_factory, "verifier", make)


# The modules whose tests take longest, longest first as measured (per-test start and end times
# on every worker, December 2026). make test hands whole modules to the workers as they free up
# (--dist loadfile, in this order), so the long ones start first and the short ones fill in at
# the end: the workers end together rather than one waiting out another's long tail.
LONGEST_FIRST = (
    "tests/training/test_multihost.py",
    "tests/cli/test_train.py",
    "tests/cli/test_predict.py",
    "tests/cli/test_verify.py",
    "tests/training/test_run.py",
    "tests/training/test_strategy.py",
    "tests/test_api.py",
    "tests/verify/test_train.py",  # after the verifier fixture that tests/cli/test_verify.py makes
    "tests/models/test_classifier.py",
    "tests/artifacts/test_disk_space.py",
    "tests/training/test_feature_cache.py",
    "tests/predict/test_ray_engine.py",
)


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker more than the cores this process may use. Many tests wait (for a
    process to start and import TensorFlow, a peer's timeout, Ray, a server), and a worker per
    core left those cores idle: on 2 cores a run used 726 s of CPU in 456 s with 2 workers, and
    392 s with 3 (measured, December 2026)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) + 1  # sched_getaffinity is Linux's; macOS has cpu_count alone


def pytest_collection_modifyitems(items):
    """LONGEST_FIRST, then the other modules by their tests marked slow; each module's tests
    stay together, so module fixtures are made once per module as before."""
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)

    def rank(name: str) -> tuple[int, int]:
        slow = sum(1 for test in modules[name] if test.get_closest_marker("slow"))
        first = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        return first, -slow

    items[:] = [item for name in sorted(modules, key=rank) for item in modules[name]]
