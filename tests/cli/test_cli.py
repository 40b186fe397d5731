"""The command group: every option has help text and sits in a panel."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gender_cls.cli import main


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_option_has_a_help_line(name):
    command = main.commands[name]
    bare = [p.opts[0] for p in command.params if p.param_type_name == "option" and not p.help]
    assert bare == []


@pytest.mark.parametrize("name, panels", [
    ("train", ["Data", "Faces", "Model", "Training", "Augmentation", "Speed",
               "Several processes (JAX)", "Output"]),
    ("evaluate", ["Test data", "Threshold", "Model", "Models from other toolkits", "Speed",
                  "Output"]),
    ("predict", ["Images", "Model", "Models from other toolkits", "Speed", "Output"]),
])  # fmt: skip
def test_help_groups_every_option_into_panels(name, panels):
    result = CliRunner().invoke(main, [name, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    titles = [line.split("─ ", 1)[1].split(" ─", 1)[0] for line in result.output.splitlines()
              if line.startswith("╭─ ")]  # fmt: skip
    assert titles == panels  # no catch-all "Options" panel: every option has its place
    for param in main.commands[name].params:
        if param.param_type_name == "option":
            assert param.opts[0] in result.output, param.opts[0]
