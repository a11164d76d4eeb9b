"""Pieces every machine-readable report shares: rule lookup, locations, counts.

The reports name files relative to the directory meshc was run from (the repository
root in CI) so that GitHub can attach annotations and code-scanning alerts to them;
spans inside the compiler are relative to the policy root, and the one conversion
between the two happens here, in `artifact_path`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path, PurePosixPath

from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.kinds import load_checks
from compiler.lint.registry import REGISTRY, Rule

TOOL_NAME = "meshc"
INFORMATION_URI = "https://github.com/meshc/meshc"


def tool_version() -> str:
    """The installed distribution's version: fixed for one install, so output stays reproducible."""
    try:
        return metadata.version(TOOL_NAME)
    except metadata.PackageNotFoundError:
        return "0.0.0"


def registered_rules() -> list[Rule]:
    """Every rule, sorted by code; importing the kinds' checks first so none is missing."""
    load_checks()
    return [REGISTRY[code] for code in sorted(REGISTRY)]


def rule_name(code: str) -> str:
    registered = REGISTRY.get(code)
    return registered.name if registered else ""


def artifact_path(root: Path, file: str) -> str:
    """`file` (relative to the policy root) as a POSIX path relative to the working directory.

    A relative root is taken as given (`policies` + `mesh.yaml` -> `policies/mesh.yaml`);
    an absolute root is made relative when it lies under the working directory and is
    otherwise kept absolute, since no relative path would name the file.
    """
    if is_pseudo_file(file):
        return file
    if root.is_absolute():
        try:
            root = Path(os.path.relpath(root))
        except ValueError:  # another drive on Windows
            return (root / file).as_posix()
        if root.parts and root.parts[0] == "..":
            return (root.resolve() / file).as_posix()
    joined = PurePosixPath(root.as_posix()) / file
    parts = [p for p in joined.parts if p != "."]
    if ".." in parts:  # a manifest beside the policy root: `policies/../k8s/a.yaml`
        normal = posixpath.normpath(PurePosixPath(*parts).as_posix())
        if normal.split("/", 1)[0] == "..":
            return Path(normal).resolve().as_posix()
        return normal
    return PurePosixPath(*parts).as_posix() if parts else file


def is_pseudo_file(file: str) -> bool:
    """Whether `file` names no file on disk (`<stdin>`, `<meshc>`): kept as written."""
    return file.startswith("<") and file.endswith(">")


@dataclass(frozen=True, slots=True)
class Region:
    """A 1-based region; `end_column` is exclusive. Point spans have no end."""

    line: int
    column: int
    end_line: int | None
    end_column: int | None


def region_of(span: Span) -> Region:
    """Normalise a span: an unset or inverted end becomes "no end" (a point)."""
    line = max(1, span.line)
    column = max(1, span.col)
    end_line, end_col = span.end_line, span.end_col
    if end_line < line or end_line == 0 or (end_line == line and end_col <= column):
        return Region(line, column, None, None)
    return Region(line, column, end_line, max(1, end_col))


@dataclass(frozen=True, slots=True)
class Summary:
    errors: int
    warnings: int
    infos: int
    suppressed: int

    @property
    def total(self) -> int:
        return self.errors + self.warnings + self.infos + self.suppressed


def summarize(diagnostics: Iterable[Diagnostic]) -> Summary:
    """Counts of unsuppressed findings per severity, and of suppressed ones."""
    counts = {s: 0 for s in Severity}
    suppressed = 0
    for diag in diagnostics:
        if diag.suppressed_reason is not None:
            suppressed += 1
        else:
            counts[diag.severity] += 1
    return Summary(
        counts[Severity.ERROR], counts[Severity.WARNING], counts[Severity.INFO], suppressed
    )


def rfc3339(now: datetime) -> str:
    """RFC 3339 with a `Z` for UTC, as SARIF and most CI tools expect."""
    text = now.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def sorted_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=Diagnostic.sort_key)
