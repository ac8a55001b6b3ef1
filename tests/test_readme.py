"""The README's "Using it" commands, run as written (demo lines): they must stay true."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qsetfit.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def using_it_commands() -> list[list[str]]:
    """The ``qsetfit`` command lines of the README's "Using it" bash block that need only the demo data."""
    section = README.read_text().split("## Using it", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        if argv and argv[0].endswith("qsetfit") and "..." not in argv and "../shared/data/sst2" not in argv:
            commands.append(argv[1:])
    return commands


@pytest.mark.slow
def test_the_readme_demo_commands_run_and_say_what_it_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = using_it_commands()
    assert [c[0] for c in commands] == ["train", "evaluate", "predict", "backends"]
    outputs = {}
    for argv in commands:
        result = CliRunner().invoke(app, ["--threads", "1", *argv])
        assert result.exit_code == 0, (argv, result.output)
        outputs[argv[0]] = result
    test = json.loads((tmp_path / "runs/demo/metrics.json").read_text())["test"]
    assert test["accuracy"] >= 0.80  # the demo's own score with the CLI defaults
    (row,) = json.loads(outputs["predict"].stdout)
    assert row["text"] == "A quietly brilliant film." and row["label"] == "positive"
