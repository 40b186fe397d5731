"""Batch evaluation throughput: images/s of test_script.py's prediction path (tf.data decode +
model.predict) against model.predict on a tensor decoded beforehand, in one run.

    python benchmarks/bench_evaluate.py --data ../shared/data/faces/test [--size 224]

Target: ratio >= 0.8 (the input pipeline is not the bottleneck).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click  # noqa: E402
import numpy as np  # noqa: E402

from gender_cls.artifacts.card import now, save_artifact  # noqa: E402
from gender_cls.config import ModelConfig  # noqa: E402
from gender_cls.data.images import load_image  # noqa: E402
from gender_cls.data.index import labelled_folder  # noqa: E402
from gender_cls.models.classifier import build_classifier  # noqa: E402
from gender_cls.predict.predictor import Predictor  # noqa: E402


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--size", default=224, show_default=True)
@click.option("--batch_size", default=32, show_default=True)
def main(data: str, size: int, batch_size: int) -> None:
    paths = labelled_folder(data).splits["test"].paths
    with tempfile.TemporaryDirectory() as tmp:
        model = build_classifier(ModelConfig(weights="none"), 2, size)
        meta = {"class_names": ["female", "male"], "image_size": size, "threshold": 0.5,
                "created": now()}  # fmt: skip
        save_artifact(model, meta, Path(tmp) / "model.keras")
        predictor = Predictor(tmp, backend="keras", batch_size=batch_size)
        decoded = np.stack([load_image(p, size) for p in paths]).astype(np.float32)
        predictor.runner.predict(decoded[:batch_size])  # warm-up: trace the predict function
        start = time.perf_counter()
        predictor.runner.predict(decoded)
        tensor_rate = len(paths) / (time.perf_counter() - start)
        start = time.perf_counter()
        predictor.predict_files(paths)
        pipeline_rate = len(paths) / (time.perf_counter() - start)
    print(f"{len(paths)} images, MobileNetV2 {size}px, batch {batch_size}, {os.cpu_count()} cores")
    print(f"model.predict on a pre-decoded tensor : {tensor_rate:7.1f} images/s")
    print(f"test_script path (tf.data + predict)  : {pipeline_rate:7.1f} images/s")
    print(f"ratio = {pipeline_rate / tensor_rate:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
