"""Bad command lines exit 2 with one clear message and no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import REPO, run_cli

POLICIES = str(REPO / "policies")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--format", "nope"], "Invalid value for '--format': 'nope' is not one of 'text', 'json'"),
        (["--fail-on", "nope"], "Invalid value for '--fail-on': 'nope' is not one of 'info'"),
        (["--now", "garbage"], "'garbage' is not a time; use RFC 3339"),
        (["--now", ""], "'' is not a time"),
    ],
)
def test_bad_flags_exit_2(args: list[str], expected: str) -> None:
    result = run_cli("meshc", "lint", POLICIES, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""


def test_nonexistent_path_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    result = run_cli("meshc", "lint", str(missing))
    assert result.returncode == 2
    assert f"{missing}: no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_path_that_is_not_yaml_exits_2(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# not a policy\n")
    for path in (readme, Path(os.devnull)):
        result = run_cli("meshc", "lint", str(path))
        assert result.returncode == 2, result.stdout
        assert f"{path}: not a policy directory or a YAML file" in result.stderr
        assert "Traceback" not in result.stderr


def test_broken_symlink_as_path_exits_2(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    result = run_cli("meshc", "lint", str(link))
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
