"""GitHub Actions workflow commands: one annotation per unsuppressed finding.

Escaping follows the runner's rules: in the message (data) `%`, CR and LF are
percent-encoded; in properties (file, title, ...) also `:` and `,`, which would otherwise
end the property. Suppressed findings produce no annotation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from compiler.diagnostics import Diagnostic, Severity
from compiler.report.common import artifact_path, region_of, rule_name

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(
    diagnostics: list[Diagnostic], lines: Mapping[str, list[str]], root: Path, now: datetime
) -> str:
    del lines, now
    out = [annotation(d, root) for d in diagnostics if d.suppressed_reason is None]
    return "".join(line + "\n" for line in out)


def annotation(diag: Diagnostic, root: Path) -> str:
    """`::error file=F,line=L,col=C,endLine=L2,endColumn=C2,title=T::message`."""
    region = region_of(diag.span)
    properties = [
        ("file", artifact_path(root, diag.span.file)),
        ("line", str(region.line)),
        ("col", str(region.column)),
    ]
    if region.end_line is not None:
        properties.append(("endLine", str(region.end_line)))
        # GitHub honours columns only on single-line annotations.
        if region.end_line == region.line and region.end_column is not None:
            properties.append(("endColumn", str(region.end_column)))
    name = rule_name(diag.code)
    properties.append(("title", f"{diag.code} {name}" if name else diag.code))
    spec = ",".join(f"{key}={escape_property(value)}" for key, value in properties)
    message = diag.message
    for related in diag.related:
        where = artifact_path(root, related.span.file)
        message += f"\nsee {where}:{related.span.line}:{related.span.col}: {related.message}"
    if diag.hint:
        message += f"\nhelp: {diag.hint}"
    return f"::{_COMMAND[diag.severity]} {spec}::{escape_data(message)}"
