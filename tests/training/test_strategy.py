"""tf.distribute strategies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gender_cls.errors import UserError
from gender_cls.training.strategy import make_strategy
from tests.helpers import REPO

MIRRORED_RUN = """
import json, logging, sys
logging.basicConfig(level=logging.INFO)
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.helpers import REPO, tiny_config
from gender_cls.training.run import train
config = tiny_config(sys.argv[1], sys.argv[2], head_epochs=2, strategy="mirrored")
config.data.image_size = 32  # what is tested is the strategy, not the images
result = train(config, verbose=0)
print(json.dumps({"epochs": len(result.history["loss"]), "replicas": tf.distribute.MirroredStrategy(
    [d.name for d in tf.config.list_logical_devices("CPU")]).num_replicas_in_sync}))
"""


def test_auto_on_one_device_is_the_default_strategy(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert make_strategy("auto").num_replicas_in_sync == 1


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(UserError, match="unknown strategy"):
        make_strategy("ring")


def test_multiworker_says_why_it_is_unavailable(monkeypatch):
    # Measured: two local workers on 127.0.0.1 fail inside Keras 3's fit() with "Attempt to
    # convert a value (PerReplica...)" (keras-team/keras#20585), so the CLI stops up front.
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    for name in ("auto", "multiworker"):
        with pytest.raises(UserError, match="keras-team/keras#20585"):
            make_strategy(name)


@pytest.mark.slow
def test_mirrored_training_over_two_logical_cpus(two_class_data, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED_RUN, str(two_class_data), str(tmp_path / "run")],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"epochs": 2, "replicas": 2}
    assert (tmp_path / "run" / "model.keras").is_file()
    assert "strategy: mirrored with 2 replica(s)" in out.stderr
