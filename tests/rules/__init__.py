"""Tests of the lint rules: one that triggers each rule, one that shows it silent."""

from __future__ import annotations

import textwrap

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


def locate(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the `occurrence`-th `needle` in `text`, so that a test
    states the expected position by what stands there rather than by counted numbers."""
    offset = -1
    for _ in range(occurrence):
        offset = text.index(needle, offset + 1)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def document(kind: str, spec: str, *, name: str, namespace: str = "shop") -> str:
    """A meshc/v1 `kind` document; `spec` (dedented) is the body under `spec:`."""
    body = textwrap.indent(textwrap.dedent(spec), "  ")
    head = (
        f"apiVersion: meshc/v1\nkind: {kind}\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
    )
    return f"{head}spec:\n{body}"
