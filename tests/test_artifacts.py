"""The model card (model.json) and the resolution of --model_path."""

from __future__ import annotations

import json

import pytest

from gender_cls.artifacts import ModelCard, ModelRef, resolve_model
from gender_cls.config import RunConfig
from gender_cls.errors import UserError


def test_card_round_trips_through_json(tmp_path):
    card = ModelCard(["female", "male"], 96, backbone="MobileNetV2", threshold=0.42,
                     config=RunConfig(), exports={"tflite": {"file": "model.tflite"}})  # fmt: skip
    path = card.save(tmp_path / "model.json")
    raw = json.loads(path.read_text())
    assert raw["output"].startswith("sigmoid") and raw["input"].startswith("RGB pixels")
    assert ModelCard.load(path) == card


def test_a_minimal_hand_written_card_gets_the_documented_defaults(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"class_names": ["a", "b", "c"], "image_size": "64"}))
    card = ModelCard.load(path)
    assert card.image_size == 64 and not card.binary
    assert (card.input_scale, card.resize, card.threshold, card.config) == (
        "raw",
        "stretch",
        None,
        None,
    )


@pytest.mark.parametrize("raw, message", [
    ({"image_size": 64}, "no class_names; a model's .json needs at least"),
    ({"class_names": ["a", "b"], "image_size": 64, "tta_views": 4},
     "unknown field(s) tta_views; it was written by a newer gender_cls"),
    ({"class_names": ["a", "b"], "image_size": 64, "config": {"train": {"loss": "mse"}}},
     "loss='mse' is not allowed"),
    ({"class_names": ["a", "../../escaped"], "image_size": 64}, "'../../escaped' is not a plain"),
    ({"class_names": ["a", ".."], "image_size": 64}, "'..' is not a plain name"),
    ({"class_names": ["a", "b\nc"], "image_size": 64}, "is not a plain name"),
    ({"class_names": "female,male", "image_size": 64}, "class_names must be a list"),
    ({"class_names": ["a", "b"], "image_size": "abc"}, "image_size must be a positive"),
    ({"class_names": ["a", "b"], "image_size": 0}, "image_size must be a positive"),
    ({"class_names": ["a", "b"], "image_size": 64, "threshold": "0.5"}, "threshold must be a"),
    (["class_names", "image_size"], "not a model card"),
    ({"class_names": ["a", "b"], "image_size": 64, "exports": {"tflite": {}}},
     "export 'tflite' must name its file"),
    ({"class_names": ["a", "b"], "image_size": 64, "exports": {"onnx": {"file": "../x.onnx"}}},
     "export 'onnx' must name its file"),
])  # fmt: skip
def test_a_bad_card_is_a_user_error_naming_the_file(tmp_path, raw, message):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(UserError) as error:
        ModelCard.load(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_resolve_model_finds_the_card_of_a_run_and_of_a_file(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    ModelCard(["a", "b"], 32).save(tmp_path / "model.json")
    (tmp_path / "other.h5").write_bytes(b"")
    ref = resolve_model(tmp_path)
    assert ref.file == tmp_path / "model.keras" and ref.card.class_names == ["a", "b"]
    assert resolve_model(ref) is ref  # resolved once, handed on
    assert resolve_model(tmp_path / "other.h5") == ModelRef(tmp_path / "other.h5", None)


@pytest.mark.parametrize("name, message", [
    ("missing.keras", "model not found"),
    ("notes.txt", "not a model file"),
    ("empty_dir", "no model.keras in this folder"),
])  # fmt: skip
def test_resolve_model_errors(tmp_path, name, message):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(UserError, match=message):
        resolve_model(tmp_path / name)


def test_json_artifacts_follow_the_umask_like_model_files(tmp_path):
    import os

    from gender_cls.artifacts import write_json

    old = os.umask(0o022)
    try:
        write_json({"a": 1}, tmp_path / "metrics.json")
        (tmp_path / "model.keras").write_bytes(b"")
    finally:
        os.umask(old)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "model.keras").stat().st_mode & 0o777 == 0o644


HOLD_LOCK = """
import sys, time
from gender_cls.artifacts import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def locked_run(tmp_path):
    """A run folder whose lock another live process holds; yields (folder, process)."""
    import subprocess
    import sys

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


def test_a_second_writer_is_refused_and_a_dead_holders_lock_is_taken_over(locked_run):
    from gender_cls.artifacts import run_lock

    run, holder = locked_run
    with pytest.raises(UserError, match=rf"run: in use by process {holder.pid} \(-c "):
        with run_lock(run):
            pass
    holder.kill()
    holder.wait(timeout=30)
    with run_lock(run), run_lock(run):  # taken over; and re-entrant in one process
        assert str(__import__("os").getpid()) in (run / ".lock").read_text()


def test_commands_on_a_run_in_use_are_one_line_and_exit_2_and_change_nothing(locked_run):
    from click.testing import CliRunner
    from conftest import make_image_tree

    from gender_cls.cli import (
        calibrate_command,
        export_command,
        train_command,
        train_verifier_command,
    )

    run, holder = locked_run
    data = make_image_tree(run.parent / "data", {"female": 4, "male": 4})
    (run / "config.json").write_text(json.dumps(RunConfig().to_dict(), default=str))
    card = {"class_names": ["a", "b"], "image_size": 32, "config": RunConfig().to_dict()}
    (run / "model.json").write_text(json.dumps(card, default=str))
    (run / "model.keras").write_bytes(b"a model")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    for command, args in [
        (train_command, ["--output_dir", str(run), "--resume"]),
        (train_command, ["--data_path", str(data), "--output_dir", str(run), "--overwrite",
                         "--weights", "none"]),
        (export_command, ["--model_path", str(run)]),
        (calibrate_command, ["--model_path", str(run)]),
        (train_verifier_command, ["--data_path", str(data), "--output_dir", str(run),
                                  "--overwrite", "--weights", "none"]),
    ]:  # fmt: skip
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 2, (args, result.output)
        assert f"in use by process {holder.pid}" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
