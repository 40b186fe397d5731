"""Batch inference on Ray Data (--engine ray): the files stream through actors that each load
the model once (an export runs without TensorFlow) and predict CHUNK files at a time, so memory
stays bounded however many files there are; results come back in the order of the files."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gender_cls.errors import UserError, first_line
from gender_cls.predict.inputs import CHUNK
from gender_cls.predict.predictor import Prediction, Predictor

log = logging.getLogger(__name__)
INSTALL = "pip install 'gender_cls[ray]' (that is, pip install 'ray[data]')"


def start(address: str | None = None):
    """Ray, connected to the cluster at `address` (ray://HOST:PORT or auto), else to a new local
    one; a one-line error without Ray or without a cluster there."""
    try:
        import ray  # optional: Ray
        import ray.data  # optional: Ray
    except ImportError:
        raise UserError(f"--engine ray needs Ray: {INSTALL}") from None
    if not ray.is_initialized():
        quiet = logging.getLogger().getEffectiveLevel() > logging.DEBUG  # without --verbose
        if quiet:  # Ray Data's console handler logs every execution at INFO
            for handler in logging.getLogger("ray.data").handlers:
                if "File" not in type(handler).__name__:
                    handler.setLevel(logging.ERROR)
            ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=not quiet,
                     configure_logging=False)  # fmt: skip
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise UserError(f"cannot reach a Ray cluster at {address}: "
                            f"{first_line(error)}; check --ray_address, or "
                            "leave it out for a local cluster") from None  # fmt: skip
    resources = ray.cluster_resources()
    log.info("ray: %d CPU(s), %d GPU(s) in the cluster", resources.get("CPU", 0),
             resources.get("GPU", 0))  # fmt: skip
    return ray


class PredictFiles:
    """A Ray Data actor: a Predictor made from (model file, options), applied to a batch of
    {"index", "path"} rows; with `records` each file gets its Prediction (face crop included, as
    predict.py), else the probabilities of readable files (and, with TTA, without it)."""

    def __init__(self, model_file: str, options: dict, records: bool):
        self.predictor = Predictor(model_file, **options)
        self.records = records

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        if self.records:
            found = self.predictor.predict_chunk(paths)
            texts = [json.dumps(p.to_dict()) for p in found]
            return {"index": batch["index"], "record": np.array(texts, dtype=object)}
        tta = self.predictor.tta  # a file that broke since it was checked: NaN rows
        scores = self.predictor.predict_chunks(paths, (tta, 1) if tta > 1 else (1,))
        out = {"index": batch["index"], "probabilities": scores[0]}
        if tta > 1:
            out["plain"] = scores[1]
        return out


def _mapped(ray, paths: list[str], model_file: Path, options: dict, records: bool):
    """The files as a Ray dataset, mapped by PredictFiles actors (one CPU each, as many as the
    cluster has CPUs, at most one per chunk), in the order of `paths`."""
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = max(1, min(cpus, -(-len(paths) // CHUNK)))
    rows = ray.data.from_items([{"index": i, "path": p} for i, p in enumerate(paths)])
    return rows.map_batches(
        PredictFiles, fn_constructor_kwargs={"model_file": str(model_file), "options": options,
                                             "records": records},
        batch_size=CHUNK, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=actors),
    )  # fmt: skip


def predict_paths(
    paths: list[str], model_file: Path, options: dict, address: str | None = None
) -> Iterator[Prediction]:
    """predict.py's Predictions, in order, each computed on the cluster."""
    if not paths:
        return
    ray = start(address)
    for row in _mapped(ray, paths, model_file, options, records=True).iter_rows():
        yield Prediction(**json.loads(row["record"]))


def probabilities(
    paths: list[str], model_file: Path, options: dict, num_classes: int, tta: int,
    address: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """[N, classes] probabilities of the files, computed on the cluster, NaN in the row of one
    that cannot be read (and without test-time views when `tta` > 1, else None)."""
    probs = np.zeros((len(paths), num_classes))
    plain = np.zeros_like(probs) if tta > 1 else None
    if not paths:
        return probs, plain
    ray = start(address)
    for batch in _mapped(ray, paths, model_file, options, records=False).iter_batches(
        batch_format="numpy", batch_size=CHUNK
    ):
        probs[batch["index"]] = batch["probabilities"]
        if plain is not None:
            plain[batch["index"]] = batch["plain"]
    return probs, plain


def scorer(address: str | None = None):
    """What evaluate() takes as `scorer` to predict on the cluster at `address` (else a new
    local one)."""

    def score(predictor: Predictor, options: dict, paths: list[str]):
        return probabilities(paths, predictor.model_file, options, len(predictor.class_names),
                             predictor.tta, address)  # fmt: skip

    return score
