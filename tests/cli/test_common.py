"""What every command shares: a run in use is one line, exit 2, and nothing changed."""

from __future__ import annotations

import json

from gender_cls.config import RunConfig


def test_commands_on_a_run_in_use_are_one_line_and_exit_2_and_change_nothing(locked_run):
    from click.testing import CliRunner

    from gender_cls.cli import (
        calibrate_command,
        export_command,
        train_command,
        train_verifier_command,
    )
    from tests.helpers import make_image_tree

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
