"""`meshc --help` lists every command without importing the optional ones."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from compiler.cli import OPTIONAL_COMMANDS


@pytest.mark.parametrize("name", sorted(OPTIONAL_COMMANDS))
def test_the_summary_table_matches_each_commands_own_help(name: str) -> None:
    entry = OPTIONAL_COMMANDS[name]
    command = getattr(importlib.import_module(entry.module), entry.attribute)
    assert command.get_short_help_str(limit=500) == entry.summary


def test_help_lists_every_command_and_imports_none_of_the_optional_ones() -> None:
    probe = (
        "import sys\n"
        "from compiler.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "finally:\n"
        "    loaded = [m for m in sys.modules if m.startswith(('compiler.cli.graph',"
        " 'compiler.cli.plan', 'compiler.cli.render', 'compiler.cli.rules',"
        " 'compiler.cli.schema', 'compiler.graphview', 'compiler.plan'))]\n"
        "    print('LOADED', sorted(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert "LOADED []" in result.stdout, result.stdout
    for name in [*OPTIONAL_COMMANDS, "lint"]:
        assert f"\n  {name} " in result.stdout
    assert "Compare the policy root at --base with --head" in result.stdout


def test_meshd_help_lists_its_registered_commands() -> None:
    from click.testing import CliRunner

    from reconciler.cli import main

    runner = CliRunner()
    top = runner.invoke(main, ["--help"], catch_exceptions=False)
    assert top.exit_code == 0, top.output
    assert "\n  ca " in top.output
    ca = runner.invoke(main, ["ca", "--help"], catch_exceptions=False)
    assert ca.exit_code == 0, ca.output
    for name in ("init", "status", "rotate", "issue", "bundle", "ack"):
        assert f"\n  {name} " in ca.output, ca.output
