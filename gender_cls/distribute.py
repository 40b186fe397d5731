"""Choose a tf.distribute strategy: one device, all local GPUs (mirrored), or several workers."""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

from gender_cls.errors import UserError

log = logging.getLogger(__name__)
STRATEGIES = ("auto", "none", "mirrored", "multiworker")


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: multi-worker when TF_CONFIG names several workers, mirrored over >1 GPU, else none.

    "mirrored" without GPUs mirrors over the logical CPU devices (how the tests run it).
    """
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy '{name}'; choose one of: {', '.join(STRATEGIES)}")
    workers = len(
        json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])
    )
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "multiworker" if workers > 1 else "mirrored" if len(gpus) > 1 else "none"
    if name == "none":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    else:
        if workers < 1:
            raise UserError("--strategy multiworker needs TF_CONFIG describing the cluster")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    log.info("strategy: %s with %d replica(s)", name, strategy.num_replicas_in_sync)
    return strategy
