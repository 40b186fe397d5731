"""Choose a tf.distribute strategy: one device, all local GPUs (mirrored), or several workers."""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

from gender_cls.config import STRATEGIES
from gender_cls.errors import UserError

log = logging.getLogger(__name__)


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: mirrored over all GPUs when there are several, else the default (one device).

    "mirrored" without GPUs mirrors over the logical CPU devices (how the tests run it).
    "multiworker" (or auto with a multi-worker TF_CONFIG) stops with a clear error: Keras 3's fit()
    fails under MultiWorkerMirroredStrategy (keras-team/keras#20585, tensorflow#72388).
    """
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy '{name}'; choose one of: {', '.join(STRATEGIES)}")
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if name == "multiworker" or (name == "auto" and len(cluster.get("worker", [])) > 1):
        raise UserError(
            "multi-worker training is not available: Keras 3's fit() fails under "
            "MultiWorkerMirroredStrategy (keras-team/keras#20585); train on several machines "
            "with KERAS_BACKEND=jax and --coordinator/--num_processes/--process_id (README: "
            "Several machines), on one with --strategy mirrored, or unset TF_CONFIG"
        )
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "none"
    if name == "none":
        strategy = tf.distribute.get_strategy()
    else:
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    log.info("strategy: %s with %d replica(s)", name, strategy.num_replicas_in_sync)
    return strategy
