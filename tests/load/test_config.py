"""`meshc.yaml` problems are located findings, and the valid parts still apply."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler.api import compile_tree
from compiler.diagnostics import Diagnostic, Severity
from compiler.load.discover import PolicyTree
from tests.helpers import MESH, NOW, run_cli, write_tree

# A Service calling a service nobody declares: MC201 (error) at a.yaml:6:11.
UNKNOWN_CALL = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: productpage}
spec:
  ports: [{name: http, port: 9080, targetPort: 9080, protocol: http}]
  calls: [review]
"""


def config_findings(config: str) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """(meshc.yaml findings, a.yaml findings) for a tree with this meshc.yaml."""
    tree = PolicyTree(
        files={"mesh.yaml": MESH.encode(), "a.yaml": UNKNOWN_CALL.encode()},
        config=textwrap.dedent(config).encode(),
    )
    compilation = compile_tree(tree, now=NOW)
    active = [d for d in compilation.diagnostics if d.suppressed_reason is None]
    return (
        [d for d in active if d.span.file == "meshc.yaml"],
        [d for d in active if d.span.file == "a.yaml"],
    )


def where(diags: list[Diagnostic]) -> list[tuple[int, int, str]]:
    return [(d.span.line, d.span.col, d.message) for d in diags]


def test_valid_config_applies() -> None:
    config, found = config_findings("disable: [MC201]\n")
    assert config == []
    assert "MC201" not in [d.code for d in found]


def test_severity_override_applies() -> None:
    config, found = config_findings("severity: {MC201: warning}\n")
    assert config == []
    overridden = [(d.code, d.severity) for d in found if d.code == "MC201"]
    assert overridden == [("MC201", Severity.WARNING)]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("exclude: vendor/\n", (1, 10, "meshc.yaml: exclude must be a list of strings")),
        ("exclude: [vendor/, 3]\n", (1, 20, "meshc.yaml: exclude[1] must be a string")),
        ("disable: [MC2O1]\n", (1, 11, "meshc.yaml: unknown rule 'MC2O1'; did you mean 'MC201'?")),
        ("disable: [mc201]\n", (1, 11, "meshc.yaml: unknown rule 'mc201'; did you mean 'MC201'?")),
        ("disable: [XX999]\n", (1, 11, "meshc.yaml: unknown rule 'XX999'")),
        ("severity: [MC201]\n", (1, 11, "meshc.yaml: severity must map rule ids to levels")),
        ("severity: {MC201: fatal}\n", (1, 19, "meshc.yaml: unknown severity 'fatal'")),
        ("severity: {MC201: 3}\n", (1, 19, "meshc.yaml: severity of MC201 must be a level name")),
        ("severity: {MC999: error}\n", (1, 12, "meshc.yaml: unknown rule 'MC999'")),
        ("disabled: [MC201]\n", (1, 1, "unknown key 'disabled'; did you mean 'disable'?")),
        (
            "- exclude\n",
            (1, 1, "meshc.yaml: must be a mapping (exclude, disable, severity, workloads)"),
        ),
        ("disable: [MC201\n", (1, 10, "YAML syntax error: this flow sequence is never closed")),
        ("disable: []\ndisable: [MC201]\n", (2, 1, "duplicate key 'disable' (first defined at")),
        ("exclude: !!python/name:os.system\n", (1, 10, "is not allowed")),
    ],
)
def test_bad_config_is_a_located_finding(config: str, expected: tuple[int, int, str]) -> None:
    problems, _ = config_findings(config)
    line, col, text = expected
    assert any(
        (d.span.line, d.span.col) == (line, col) and text in d.message and d.hint for d in problems
    ), where(problems)
    assert all(d.severity == Severity.ERROR for d in problems)


def test_valid_parts_still_apply_next_to_a_bad_one() -> None:
    problems, found = config_findings("disable: [MC201, NOPE]\nseverity: {MC999: error}\n")
    assert [(line, col) for line, col, _ in where(problems)] == [(1, 18), (2, 12)]
    assert "MC201" not in [d.code for d in found]


def test_bad_config_through_the_cli(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {"mesh.yaml": MESH, "meshc.yaml": "exclude: [vendor/]\nseverity: {MC201: loud}\n"},
    )
    result = run_cli("meshc", "lint", str(root), "--now", "2026-11-25T12:00:00Z")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "meshc.yaml:2:19: error[MC103] meshc.yaml: unknown severity 'loud'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_unreadable_config_is_a_finding(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"mesh.yaml": MESH})
    (root / "meshc.yaml").mkdir()
    result = run_cli("meshc", "lint", str(root), "--now", "2026-11-25T12:00:00Z")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "meshc.yaml:1:1: error[MC107] not a regular file" in result.stdout
