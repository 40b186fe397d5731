"""Fixtures: tiny synthetic image folders made in tmp_path, and the real data where present."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FACES = SHARED_DATA / "faces"
XRAY = SHARED_DATA / "xray"


def write_image(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def class_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A learnable synthetic image: class 0 is bright on the left half, class 1 on the right."""
    image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    half = slice(0, size // 2) if label == 0 else slice(size // 2, size)
    image[:, half] += 150
    return image


def make_image_tree(root: Path, counts: dict[str, int], size: int = 32, seed: int = 0) -> Path:
    """root/<class>/img_i.png with counts[class] synthetic images each."""
    rng = np.random.default_rng(seed)
    for label, (name, n) in enumerate(sorted(counts.items())):
        for i in range(n):
            write_image(root / name / f"img_{i:03d}.png", class_image(label % 2, size, rng))
    return root


def person_image(identity: int, rng, size: int = 48) -> np.ndarray:
    """Each synthetic person is a fixed layout of coloured squares; images of one person differ
    by noise and a small shift."""
    layout = np.random.default_rng(1000 + identity)
    image = np.full((size, size, 3), 90, np.float64)
    for _ in range(4):
        y, x = layout.integers(0, size - 14, 2)
        image[y : y + 14, x : x + 14] = layout.integers(0, 256, 3)
    image = np.roll(image, rng.integers(-2, 3, 2), axis=(0, 1))
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def people_tree(root, people: int, images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for identity in range(people):
        folder = root / f"person_{identity:02d}"
        folder.mkdir(parents=True)
        for i in range(images):
            Image.fromarray(person_image(identity, rng)).save(folder / f"img_{i}.png")
    return root


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


def needs(path: Path):
    return pytest.mark.skipif(not path.is_dir(), reason=f"{path} not present")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_config(data: Path, out: Path, **train):
    """A small from-scratch MobileNetV2 (alpha 0.35, 64 px) run on `data`, no augmentation, no
    export unless `export` is given."""
    from gender_cls.config import AugmentConfig, DataConfig, ModelConfig, RunConfig, TrainConfig

    return RunConfig(
        DataConfig(str(data), image_size=64, batch_size=8),
        AugmentConfig.off(),
        ModelConfig(weights="none", alpha=0.35),
        TrainConfig(output_dir=str(out), **{"export": "none", **train}),
    )


@pytest.fixture(scope="session")
def two_class_data(tmp_path_factory) -> Path:
    """train/val/test of two learnable synthetic classes, 64 px."""
    root = tmp_path_factory.mktemp("two_class")
    make_image_tree(root / "train", {"female": 40, "male": 40}, size=64, seed=1)
    make_image_tree(root / "val", {"female": 12, "male": 12}, size=64, seed=2)
    make_image_tree(root / "test", {"female": 12, "male": 12}, size=64, seed=3)
    return root


@pytest.fixture(scope="session")
def trained_run(two_class_data, tmp_path_factory):
    """One small model trained for the whole session (about a minute on 2 cores), exported to
    TFLite as training does by default."""
    from gender_cls.training import train

    out = tmp_path_factory.mktemp("runs") / "run"
    config = tiny_config(two_class_data, out, head_epochs=8, patience=10, export="tflite")
    return train(config, verbose=0)


@pytest.fixture
def captured(monkeypatch):
    """Runs train_command with training replaced by a recorder of the config it was given."""
    from click.testing import CliRunner

    from gender_cls import training
    from gender_cls.cli import train_command

    seen = {}

    def fake_train(config, **kwargs):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(training, "train", fake_train)

    def run(*args):
        result = CliRunner().invoke(train_command, ["--data_path", "DATA", *args])
        return result, seen.get("config")

    return run
