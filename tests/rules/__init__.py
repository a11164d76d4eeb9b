"""Tests of the lint rules: one that triggers each rule, one that shows it silent."""

from __future__ import annotations

from compiler.api import Compilation
from compiler.diagnostics import Diagnostic
from tests.helpers import findings


def only(compilation: Compilation, code: str) -> Diagnostic:
    """The single unsuppressed finding of `code` (fails with the full list otherwise)."""
    found = findings(compilation, code)
    assert len(found) == 1, [f"{d.span} {d.code} {d.message}" for d in compilation.diagnostics]
    return found[0]


def where(diagnostic: Diagnostic) -> tuple[str, int, int]:
    return (diagnostic.span.file, diagnostic.span.line, diagnostic.span.col)
