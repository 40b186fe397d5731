"""gender-cls serve: refusals before the server starts."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")


def test_a_model_without_an_export_is_refused_in_one_line(tmp_path):
    from click.testing import CliRunner

    from gender_cls.cli import serve_command

    (tmp_path / "model.keras").write_bytes(b"PK")
    (tmp_path / "model.json").write_text(json.dumps({"class_names": ["a", "b"], "image_size": 64}))
    result = CliRunner().invoke(serve_command, ["--model_path", str(tmp_path)])
    assert result.exit_code == 2
    assert "serve runs an exported model (no TensorFlow); run gender-cls export" in result.output
