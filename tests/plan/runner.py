"""Run `meshc plan` in-process (click's runner): fast, and an unexpected exception fails."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from compiler.cli import cli

NOW = "2026-11-25T12:00:00Z"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def meshc_plan(*args: str) -> Outcome:
    result = CliRunner().invoke(cli, ["plan", "--now", NOW, *args], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"meshc plan raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return Outcome(result.exit_code, result.stdout, result.stderr)
