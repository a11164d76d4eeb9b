"""JUnit XML: one testsuite, one testcase per file, one failure per finding.

CI systems that only understand test reports (Jenkins, GitLab, Azure) show lint results
this way. Errors and warnings are failures; info findings and suppressed findings are
listed in the testcase's system-out so they stay visible without failing it. XML 1.0
cannot carry most control characters even escaped, so they are spelt out as `\\xNN`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from compiler.diagnostics import Diagnostic, Severity
from compiler.report.common import artifact_path, rfc3339, rule_name

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` with the characters XML 1.0 forbids replaced by a visible `\\xNN` form."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def render_junit(
    diagnostics: list[Diagnostic], lines: Mapping[str, list[str]], root: Path, now: datetime
) -> str:
    files = sorted({*lines, *(d.span.file for d in diagnostics)})
    by_file: dict[str, list[Diagnostic]] = {f: [] for f in files}
    for diag in diagnostics:
        by_file[diag.span.file].append(diag)
    failures = sum(1 for d in diagnostics if _fails(d))
    suites = ET.Element(
        "testsuites",
        {"name": "meshc lint", "tests": str(len(files)), "failures": str(failures), "errors": "0"},
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": "meshc lint",
            "tests": str(len(files)),
            "failures": str(failures),
            "errors": "0",
            "skipped": "0",
            "timestamp": rfc3339(now),
        },
    )
    for file in files:
        _testcase(suite, root, artifact_path(root, file), by_file[file])
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _fails(diag: Diagnostic) -> bool:
    return diag.suppressed_reason is None and diag.severity >= Severity.WARNING


def _testcase(suite: ET.Element, root: Path, path: str, diagnostics: list[Diagnostic]) -> None:
    case = ET.SubElement(suite, "testcase", {"classname": "meshc.lint", "name": xml_text(path)})
    notes = []
    for diag in diagnostics:
        where = f"{path}:{diag.span.line}:{diag.span.col}"
        name = rule_name(diag.code)
        headline = f"{diag.severity.label}[{diag.code}] {diag.message}"
        if _fails(diag):
            failure = ET.SubElement(
                case,
                "failure",
                {
                    "type": f"{diag.code} {name}".strip(),
                    "message": xml_text(f"{where}: {headline}"),
                },
            )
            detail = f"{where}: {headline}" + "".join(
                f"\nsee {artifact_path(root, r.span.file)}:{r.span.line}:{r.span.col}: {r.message}"
                for r in diag.related
            )
            detail += f"\nhelp: {diag.hint}" if diag.hint else ""
            failure.text = xml_text(detail)
        elif diag.suppressed_reason is not None:
            notes.append(f"{where}: {headline} (suppressed: {diag.suppressed_reason})")
        else:
            notes.append(f"{where}: {headline}")
    if notes:
        ET.SubElement(case, "system-out").text = xml_text("\n".join(notes))
