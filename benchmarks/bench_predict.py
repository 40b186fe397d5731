"""Cold-start prediction of one image, whole processes, measured in one run:

(a) a seed-style script: import TensorFlow, keras load_model, predict;
(b) a bare LiteRT script on the same model exported to TFLite;
(c) predict.py on the run directory (which uses the TFLite export);
(d) predict.py with --backend onnx (the ONNX export, run by onnxruntime);
(e) predict.py with --face_crop (BlazeFace under LiteRT, then the TFLite export).

    python benchmarks/bench_predict.py [--runs 5] [--size 224] [--image PATH]

Prints the mean wall time and peak memory of each, and the ratios c/a (target <= 0.1) and
c/b (target <= 2), d/a, and e/c (target <= 2). The model is an untrained MobileNetV2 classifier built here (weights=None).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import click  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SEED_SCRIPT = """
import sys, numpy as np, tensorflow as tf
model = tf.keras.models.load_model(sys.argv[1])
image = tf.keras.utils.load_img(sys.argv[2], target_size=(SIZE, SIZE))
print(model.predict(np.asarray(image, np.float32)[None], verbose=0))
"""

LITERT_SCRIPT = """
import sys, numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1])
it.allocate_tensors()
image = Image.open(sys.argv[2]).convert("RGB").resize((SIZE, SIZE))
it.set_tensor(it.get_input_details()[0]["index"], np.asarray(image, np.float32)[None])
it.invoke()
print(it.get_tensor(it.get_output_details()[0]["index"]))
"""


def make_run(folder: Path, size: int) -> Path:
    """An untrained MobileNetV2 run directory: model.keras, model.json, TFLite and ONNX exports."""
    from gender_cls.artifacts.card import ModelCard, now, save_artifact
    from gender_cls.config import ModelConfig
    from gender_cls.models.classifier import build_classifier
    from gender_cls.predict.export import export_model

    model = build_classifier(ModelConfig(weights="none"), 2, size)
    card = ModelCard(["female", "male"], size, threshold=0.5, threshold_source="benchmark",
                     created=now())  # fmt: skip
    save_artifact(model, card, folder / "model.keras")
    export_model(folder, "tflite")
    export_model(folder, "onnx")
    return folder


def time_process(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{args[:3]} failed with status {status}")
    return wall, usage.ru_maxrss / 1024


@click.command()
@click.option("--runs", default=5, show_default=True)
@click.option("--size", default=224, show_default=True)
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A face photo, so (e) finds a face [default: random pixels].",
)
def main(runs: int, size: int, image: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # Built in a child process so that this one never loads TensorFlow: a forked child's peak
        # memory would otherwise count the parent's.
        spawn = multiprocessing.get_context("spawn")
        builder = spawn.Process(target=make_run, args=(tmp / "run", size))
        builder.start()
        builder.join()
        run = tmp / "run"
        if image is None:
            image = str(tmp / "photo.jpg")
            pixels = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(image)
        py = sys.executable
        commands = {
            "(a) seed-style TF script": [py, "-c", SEED_SCRIPT.replace("SIZE", str(size)),
                                         str(run / "model.keras"), image],
            "(b) bare LiteRT script": [py, "-c", LITERT_SCRIPT.replace("SIZE", str(size)),
                                       str(run / "model.tflite"), image],
            "(c) predict.py": [py, str(REPO / "predict.py"), "--image_path", image,
                               "--model_path", str(run)],
            "(d) predict.py, ONNX": [py, str(REPO / "predict.py"), "--image_path", image,
                                     "--model_path", str(run), "--backend", "onnx"],
            "(e) predict.py --face_crop": [py, str(REPO / "predict.py"), "--image_path", image,
                                           "--model_path", str(run), "--face_crop"],
        }  # fmt: skip
        results = {}
        for name, args in commands.items():
            time_process(args)  # warm the file cache
            samples = [time_process(args) for _ in range(runs)]
            results[name] = (statistics.mean(s[0] for s in samples), max(s[1] for s in samples))
    print(f"one {size}px image, MobileNetV2, mean of {runs} cold processes:")
    for name, (wall, mib) in results.items():
        print(f"{name:28s} {wall:6.2f} s  {mib:6.0f} MiB peak")
    a, b, c, d, e = (results[n][0] for n in commands)
    print(f"c/a = {c / a:.3f} (target <= 0.1)   c/b = {c / b:.2f} (target <= 2)   "
          f"d/a = {d / a:.3f}   e/c = {e / c:.2f} (target <= 2)")  # fmt: skip


if __name__ == "__main__":
    main()
