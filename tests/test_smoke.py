"""The example repository lints clean and the pipeline is deterministic."""

from __future__ import annotations

from compiler.api import compile_tree, load_tree
from compiler.diagnostics import Severity
from tests.helpers import NOW, REPO, codes, compile_files, run_cli


def test_policies_lint_clean_in_process() -> None:
    compilation = compile_tree(load_tree(REPO / "policies"), now=NOW)
    assert compilation.blocking(Severity.WARNING) == []
    assert len(compilation.model.services) == 4


def test_policies_lint_clean_cli() -> None:
    result = run_cli("meshc", "lint", str(REPO / "policies"), "--now", "2026-11-25T12:00:00Z")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s)" in result.stdout


def test_unknown_called_service_is_reported_at_the_entry() -> None:
    compilation = compile_files(
        {
            "a.yaml": """\
            apiVersion: meshc/v1
            kind: Service
            metadata: {name: productpage, namespace: bookinfo}
            spec:
              ports: [{name: http, port: 9080}]
              calls: [review]
            """
        }
    )
    assert "MC201" in codes(compilation)
    found = next(d for d in compilation.diagnostics if d.code == "MC201")
    assert (found.span.file, found.span.line, found.span.col) == ("a.yaml", 6, 11)
    assert "'review'" in found.message
