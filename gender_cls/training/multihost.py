"""Training across processes and machines on the JAX backend: keras.distribution's DataParallel
over the devices of every process. Each process reads its slice of every global batch; process 0
alone writes the run folder (the others work in a scratch folder that starts as a copy of the
run's state, so --resume restores every process alike)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cls.artifacts.run_folder import CONFIG_FILE, SPLIT_FILE, STATE_FILE
from gender_cls.errors import UserError, first_line

log = logging.getLogger(__name__)
ENV_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_COUNT = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
# What a process needs of a run to start or resume it as process 0 does.
STATE_FILES = (CONFIG_FILE, SPLIT_FILE, STATE_FILE, "checkpoints/*.weights.h5",
               "checkpoints/backup_*/epoch-*.weights.h5")  # fmt: skip


@dataclass(frozen=True)
class Cluster:
    coordinator: str  # HOST:PORT of process 0
    num_processes: int
    process_id: int

    @property
    def is_writer(self) -> bool:
        return self.process_id == 0


def cluster_from(coordinator: str | None, num_processes: int | None,
                 process_id: int | None) -> Cluster | None:  # fmt: skip
    """The cluster the options describe, else keras.distribution.initialize()'s environment
    variables; None for one process."""
    coordinator = coordinator or os.environ.get(ENV_ADDRESSES, "").split(",")[0].strip() or None
    if num_processes is None and os.environ.get(ENV_COUNT, "").isdigit():
        num_processes = int(os.environ[ENV_COUNT])
    if process_id is None and os.environ.get(ENV_ID, "").isdigit():
        process_id = int(os.environ[ENV_ID])
    if not num_processes or num_processes == 1:
        return None
    if coordinator is None or process_id is None:
        raise UserError(f"{num_processes} processes need --coordinator HOST:PORT and --process_id "
                        f"(or ${ENV_ADDRESSES} and ${ENV_ID})")  # fmt: skip
    if not 0 <= process_id < num_processes:
        raise UserError(f"--process_id {process_id} must be 0 to {num_processes - 1}")
    if ":" not in coordinator:
        raise UserError(f"--coordinator {coordinator!r} must be HOST:PORT (process 0's address)")
    return Cluster(coordinator, num_processes, process_id)


def join(cluster: Cluster, peer_timeout: int = 60) -> None:
    """Connect to the other processes (waiting at most `peer_timeout` s for all of them) and
    train data-parallel over all their devices. A process that dies later ends the others
    within `peer_timeout` s (JAX's heartbeat), with JAX's message that another task died."""
    import keras  # TensorFlow, only when used

    if keras.backend.backend() != "jax":
        raise UserError("training on several processes runs on the JAX backend: set "
                        "KERAS_BACKEND=jax (pip install jax)")  # fmt: skip
    _rendezvous(cluster, peer_timeout)
    import jax  # only under the JAX backend

    # CPU devices talk through gloo (GPUs use NCCL whatever this says); set before JAX starts.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    log.info("process %d of %d: joining %s", cluster.process_id, cluster.num_processes,
             cluster.coordinator)  # fmt: skip
    try:
        jax.distributed.initialize(
            cluster.coordinator, cluster.num_processes, cluster.process_id,
            initialization_timeout=peer_timeout, heartbeat_timeout_seconds=peer_timeout,
            shutdown_timeout_seconds=24 * 3600,  # peers wait while process 0 writes the run
        )  # fmt: skip
    except Exception as error:  # the coordinator's RPC errors have no common type
        raise _join_error(cluster, peer_timeout, first_line(error)) from None
    keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=False))
    log.info("process %d of %d: %d device(s) here, %d in all", cluster.process_id,
             cluster.num_processes, jax.local_device_count(), jax.device_count())  # fmt: skip


def _rendezvous(cluster: Cluster, timeout: float) -> None:
    """Wait, at most `timeout` s, until every process is up, before JAX starts (JAX's own wait
    ends the process with a fatal C++ error rather than a message). Process 0 listens on the
    coordinator's port, the others report their id there; then JAX takes the port over."""
    host, port = cluster.coordinator.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    if cluster.is_writer:
        waiting = set(range(1, cluster.num_processes))
        with socket.create_server(("", int(port)), reuse_port=True) as server:
            peers = []
            while waiting:
                server.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    peer, _ = server.accept()
                except TimeoutError:
                    missing = ", ".join(map(str, sorted(waiting)))
                    raise _join_error(
                        cluster, timeout, f"process(es) {missing} never came"
                    ) from None
                peer.settimeout(5)
                with contextlib.suppress(OSError, ValueError):
                    waiting.discard(int(peer.recv(16).decode().strip()))
                peers.append(peer)
            for peer in peers:
                with contextlib.suppress(OSError), peer:
                    peer.sendall(b"go\n")
        return
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=5) as conn:
                conn.sendall(f"{cluster.process_id}\n".encode())
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                if conn.recv(16).startswith(b"go"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise _join_error(cluster, timeout, "process 0 did not answer",
                              "start process 0 there, with the same --num_processes")  # fmt: skip
        time.sleep(0.5)


def _join_error(cluster: Cluster, timeout: float, why: str, fix: str = "") -> UserError:
    """The one-line error of processes that could not meet within `timeout` s."""
    fix = fix or ("start every process, with the same --coordinator and --num_processes and "
                  "distinct --process_id")  # fmt: skip
    return UserError(f"could not join {cluster.num_processes} processes at {cluster.coordinator} "
                     f"within {timeout:.0f} s ({why}); {fix}")  # fmt: skip


def local_copy(model):
    """`model` rebuilt on this process alone with its trained weights (replicated in every
    process, so reading them needs no other process); Keras leaves the distribution here, so
    models built from now on live on this process's devices only."""
    import keras  # TensorFlow, only when used

    weights = model.get_weights()
    keras.distribution.set_distribution(None)
    copy = keras.models.clone_model(model)
    copy.set_weights(weights)
    return copy


def _broadcast_bytes(data: bytes) -> bytes:
    """Process 0's `data`, in every process (the others pass b"")."""
    from jax.experimental import multihost_utils  # only under the JAX backend

    size = int(multihost_utils.broadcast_one_to_all(np.array(len(data), np.int64)))
    if size == 0:
        return b""
    buffer = np.frombuffer(data, np.uint8) if len(data) == size else np.zeros(size, np.uint8)
    return np.asarray(multihost_utils.broadcast_one_to_all(buffer)).tobytes()


def allgather_json(value) -> list:
    """Every process's `value` (anything JSON can write), in process order, in every process."""
    from jax.experimental import multihost_utils  # only under the JAX backend

    data = np.frombuffer(json.dumps(value).encode(), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.array(len(data), np.int64)))
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: len(data)] = data
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    return [json.loads(row[:size].tobytes()) for row, size in zip(gathered, sizes, strict=True)]


def share_run_state(run_dir: Path, cluster: Cluster | None) -> None:
    """Process 0 sends the state files of its run folder; every other process writes them into
    its own `run_dir` (a scratch folder), so all start, or resume, from the same split and
    weights."""
    if cluster is None:
        return
    packed = b""
    if cluster.is_writer:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for pattern in STATE_FILES:
                for path in sorted(run_dir.glob(pattern)):
                    tar.add(path, arcname=str(path.relative_to(run_dir)))
        packed = out.getvalue()
    packed = _broadcast_bytes(packed)
    if not cluster.is_writer:
        with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
            tar.extractall(run_dir, filter="data")
