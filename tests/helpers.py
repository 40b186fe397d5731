"""Helpers the tests share: tiny synthetic image folders, the real data where present, a
small run's config, a free port (fixtures live in conftest.py)."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gender_cls.data.images import read_image

REPO = Path(__file__).resolve().parents[1]  # the project's root
SHARED_DATA = REPO.parent / "shared" / "data"
FACES = SHARED_DATA / "faces"
XRAY = SHARED_DATA / "xray"
IDENTITIES = SHARED_DATA / "identities"
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
                None)  # fmt: skip
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)"
)


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


def needs(path: Path):
    return pytest.mark.skipif(not path.is_dir(), reason=f"{path} not present")


# A test's JAX process: XLA at -O0. Its programs are compiled once and run for a few steps, so
# LLVM's optimisation was most of its CPU (a one-process training run: 33 s, 19 s at -O0); what
# the tests compare (processes alike, or JAX against TensorFlow within a tolerance) is the same.
JAX_ENV = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_backend_optimization_level=0"}


@contextmanager
def serving(model: Path, *options: str):
    """`gender-cls serve` on `model` in its own process on a free port, answering /health:
    yields (port, url, process); terminated after."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gender_cls", "serve", "--model_path", str(model), "--port",
         str(port), *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.2)
    else:  # no /health within the minute: the test would only fail later, less clearly
        process.kill()
        pytest.fail(
            f"gender-cls serve gave no /health in 60 s:\n{process.communicate()[0][-3000:]}"
        )
    try:
        yield port, url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_config(data: Path, out: Path, **train):
    """A small from-scratch MobileNet (v1, alpha 0.25, 64 px: it traces and trains in half the time
    of MobileNetV2, whose rows the model tests cover) run on `data`, no augmentation, no
    export unless `export` is given."""
    from gender_cls.config import AugmentConfig, DataConfig, ModelConfig, RunConfig, TrainConfig

    return RunConfig(
        DataConfig(str(data), image_size=64, batch_size=8),
        AugmentConfig.off(),
        ModelConfig(backbone="MobileNet", weights="none", alpha=0.25),
        TrainConfig(output_dir=str(out), **{"export": "none", **train}),
    )


HOLD_LOCK = """
import sys, time
from gender_cls.artifacts.run_folder import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def random_image(size: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (size, size, 3)).astype(np.uint8)


def over_confident(n: int = 2000, seed: int = 0):
    """Labels and two-column probabilities of a model that is right 80% of the time but says
    97%: logits of a calibrated model, multiplied by 3."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p_true = rng.beta(8, 2, n)  # calibrated confidence in the true class, mean 0.8
    correct = rng.uniform(size=n) < p_true
    p_positive = np.where(correct == (y == 1), p_true, 1 - p_true)
    logit = np.log(p_positive / (1 - p_positive)) * 3
    p = 1 / (1 + np.exp(-logit))
    return y, np.stack([1 - p, p], axis=1)


def photos() -> list[np.ndarray]:
    """scikit-image's astronaut (always there) and a few LFW frames where ../shared is present."""
    from skimage import data as skimage_data

    found = [skimage_data.astronaut()]
    wild = sorted((SHARED_DATA / "faces-wild" / "val").glob("*/*.jpg"))[::50][:5]
    return found + [read_image(str(p)) for p in wild]


def descriptors(chips) -> np.ndarray:
    """dlib's descriptors of 150 px chips, computed by the toolkit's Keras network."""
    from gender_cls.models import dlib_resnet
    from gender_cls.models.weights import dlib_resnet as dlib_weights

    model = dlib_resnet.build(150)
    dlib_weights.load_pretrained(model)
    x = dlib_resnet.preprocess(np.stack(chips).astype(np.float32))
    return model.predict(x, verbose=0).mean(axis=(1, 2))


BLANK = np.full((160, 160, 3), 128, np.uint8)


WEIGHTS = np.array([[2.0, -2.0], [0.0, 0.0], [-2.0, 2.0]], np.float32)  # R -> class 0, B -> 1


def nchw_onnx(path, size: int = 8):
    """A PyTorch-style export: input (N, 3, H, W), per-channel mean -> two logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        ],
        "torch_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(WEIGHTS, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def bomb_png(path: Path, side: int = 30000) -> Path:
    """A 1-bit black PNG of side x side pixels: about 110 KB on disk for 30000, 900 million pixels
    (and 2.7 GB as RGB) once decoded. Written row by row: the image itself is never held."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = bytes(1 + (side + 7) // 8)  # filter byte 0, then the bits
    packer, parts = zlib.compressobj(9), []
    for _ in range(side):
        parts.append(packer.compress(row))
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))  # fmt: skip
    return path


def declare_size(path: Path, entry: str, size: int) -> None:
    """Make the zip at `path` declare `size` bytes for `entry`, in its local header and in the
    central directory, as a hostile file would; the bytes present stay as they were."""
    import struct

    data, name = bytearray(path.read_bytes()), entry.encode()
    for signature, name_at, size_at in ((b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)):
        at = 0
        while (at := data.find(signature, at)) != -1:
            if data[at + name_at : at + name_at + len(name)] == name:
                data[at + size_at : at + size_at + 4] = struct.pack("<I", size)
            at += 4
    path.write_bytes(bytes(data))


def lfw_pairs_file(path: Path, people: Path, folds: int, per_fold: int, seed: int = 0) -> Path:
    """A pairs.txt in LFW's format from a folder of <person>/<person>_NNNN.jpg: each fold its
    own people (as View 2), `per_fold` pairs of one person, then `per_fold` of two."""
    rng = np.random.default_rng(seed)
    names = sorted(p.name for p in people.iterdir() if len(list(p.glob("*.jpg"))) >= 2)
    rng.shuffle(names)
    need = 2 * per_fold  # people per fold: a same pair each, and two people per different pair
    lines = [f"{folds}\t{per_fold}"]
    for fold in range(folds):
        group = names[fold * need : (fold + 1) * need]

        def number(person: str) -> list[int]:
            files = sorted((people / person).glob("*.jpg"))
            picks = rng.choice(len(files), 2, replace=False)
            return [int(files[i].stem.rsplit("_", 1)[1]) for i in picks]

        for person in group[:per_fold]:
            i, j = number(person)
            lines.append(f"{person}\t{i}\t{j}")
        for k in range(per_fold):
            one, two = group[k], group[per_fold + k]
            lines.append(f"{one}\t{number(one)[0]}\t{two}\t{number(two)[0]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def raising_dds() -> bytes:
    """A DDS file with its pixel-format flags zeroed: Pillow's decoder raises NotImplementedError
    on it (which once ended predict.py with a traceback and the server with a bare 500)."""
    encoded = io.BytesIO()
    Image.new("RGB", (16, 16)).save(encoded, format="DDS")
    return encoded.getvalue()[:80] + bytes(4) + encoded.getvalue()[84:]


def png_bytes(size=(64, 64), seed=0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def post_image(url: str, data: bytes) -> list:
    request = urllib.request.Request(f"{url}/predict", data=data,
                                     headers={"Content-Type": "image/png"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def needs_packages(*names: str):
    """Skip a test where one of these packages is not installed (they are all in
    requirements-dev.txt, so CI runs every test)."""
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed")
