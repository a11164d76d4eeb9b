"""Machine-readable lint reports: json, sarif, github and junit.

`render` is the one entry point (`meshc lint --format ...` calls it). Every format is
deterministic: findings are sorted, keys are ordered, and the only time in the output is
the evaluation time the caller passes in (the time expiries were judged at).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from compiler.diagnostics import Diagnostic, Span
from compiler.report.common import (
    region_of,
    rfc3339,
    rule_name,
    sorted_diagnostics,
    summarize,
    tool_version,
)
from compiler.report.github import render_github
from compiler.report.junit import render_junit
from compiler.report.sarif import render_sarif

JSON_REPORT_VERSION = 1
"""Bumped only on an incompatible change to the json report (schemas/lint-report.schema.json)."""

_COUNT = {"type": "integer", "minimum": 0}
_POSITION = {"type": "integer", "minimum": 1}

JSON_REPORT_SCHEMA: dict[str, Any] = {
    "title": "meshc lint report",
    "description": (
        "The output of `meshc lint --format json`. Findings are sorted by file, line, column, "
        "code and message; `file` is relative to the policy root; columns are 1-based "
        "Unicode code points and `endColumn` is exclusive (a point finding has end = start). "
        "Fields are only ever added within one `version`."
    ),
    "type": "object",
    "required": ["version", "tool", "evaluatedAt", "summary", "findings"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": JSON_REPORT_VERSION},
        "tool": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"const": "meshc"}, "version": {"type": "string"}},
        },
        "evaluatedAt": {
            "type": "string",
            "description": "the time expiries were judged at (RFC 3339)",
        },
        "summary": {
            "type": "object",
            "description": "unsuppressed findings per severity, suppressed ones, and all",
            "required": ["error", "warning", "info", "suppressed", "total"],
            "additionalProperties": False,
            "properties": {k: _COUNT for k in ("error", "warning", "info", "suppressed", "total")},
        },
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "code",
                    "name",
                    "severity",
                    "file",
                    "line",
                    "column",
                    "endLine",
                    "endColumn",
                    "message",
                    "hint",
                    "suppressed",
                    "suppressionReason",
                ],
                "properties": {
                    "code": {"type": "string", "pattern": "^MC[0-9]{3}$"},
                    "name": {"type": "string", "description": "the rule's name; see meshc rules"},
                    "severity": {"enum": ["error", "warning", "info"]},
                    "file": {"type": "string"},
                    "line": _POSITION,
                    "column": _POSITION,
                    "endLine": _POSITION,
                    "endColumn": _POSITION,
                    "message": {"type": "string", "description": "the problem"},
                    "hint": {"type": "string", "description": "the remedy (may be empty)"},
                    "suppressed": {"type": "boolean"},
                    "suppressionReason": {"type": ["string", "null"]},
                    "related": {
                        "type": "array",
                        "description": "other places that explain the finding (a manifest)",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": [
                                "file",
                                "line",
                                "column",
                                "endLine",
                                "endColumn",
                                "message",
                            ],
                            "properties": {
                                "file": {"type": "string"},
                                "line": _POSITION,
                                "column": _POSITION,
                                "endLine": _POSITION,
                                "endColumn": _POSITION,
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}
"""The json report's contract, published as schemas/lint-report.schema.json."""


def render(
    fmt: str,
    diagnostics: list[Diagnostic],
    *,
    lines: Mapping[str, list[str]],
    root: Path,
    now: datetime,
) -> str:
    """The report for `diagnostics` in format `fmt` (json, sarif, github or junit)."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        choices = ", ".join(sorted(_RENDERERS))
        raise ValueError(f"unknown report format {fmt!r}; choose one of {choices}")
    return renderer(sorted_diagnostics(diagnostics), lines, root, now)


def render_json(
    diagnostics: list[Diagnostic], lines: Mapping[str, list[str]], root: Path, now: datetime
) -> str:
    """The stable json report: `{version, tool, evaluatedAt, summary, findings}`."""
    del lines, root  # file paths stay relative to the policy root, as in text output
    summary = summarize(diagnostics)
    report = {
        "version": JSON_REPORT_VERSION,
        "tool": {"name": "meshc", "version": tool_version()},
        "evaluatedAt": rfc3339(now),
        "summary": {
            "error": summary.errors,
            "warning": summary.warnings,
            "info": summary.infos,
            "suppressed": summary.suppressed,
            "total": summary.total,
        },
        "findings": [_json_finding(d) for d in diagnostics],
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _json_finding(diag: Diagnostic) -> dict[str, Any]:
    return {
        "code": diag.code,
        "name": rule_name(diag.code),
        "severity": diag.severity.label,
        **_json_place(diag.span),
        "message": diag.message,
        "hint": diag.hint,
        "suppressed": diag.suppressed_reason is not None,
        "suppressionReason": diag.suppressed_reason,
        "related": [
            {**_json_place(related.span), "message": related.message} for related in diag.related
        ],
    }


def _json_place(span: Span) -> dict[str, Any]:
    region = region_of(span)
    return {
        "file": span.file,
        "line": region.line,
        "column": region.column,
        "endLine": region.end_line if region.end_line is not None else region.line,
        "endColumn": region.end_column if region.end_column is not None else region.column,
    }


Renderer = Callable[[list[Diagnostic], Mapping[str, list[str]], Path, datetime], str]

_RENDERERS: dict[str, Renderer] = {
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
    "junit": render_junit,
}
