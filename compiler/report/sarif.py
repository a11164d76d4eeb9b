"""SARIF 2.1.0 for GitHub code scanning (and any other SARIF consumer).

One run; `tool.driver.rules` lists every registered rule (so an alert can show its full
documentation even when the rule did not fire in this run); each result points at its
rule by id and index. Fingerprints deliberately ignore line numbers: an edit above a
finding must not make code scanning close the alert and open a "new" one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from compiler.diagnostics import Diagnostic, Related, Severity, Span
from compiler.lint.registry import Rule
from compiler.report.common import (
    INFORMATION_URI,
    TOOL_NAME,
    artifact_path,
    is_pseudo_file,
    region_of,
    registered_rules,
    rfc3339,
    tool_version,
)
from compiler.report.rulesdoc import summary

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
SRCROOT_MEANING = "The directory meshc ran in (the repository root in CI)."
"""Described rather than given as a URI: an absolute path would differ on every machine."""
FINGERPRINT_KEY = "meshcFindingHash/v1"

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_CATEGORY = {
    "0": "meshc",
    "1": "schema",
    "2": "references",
    "3": "conflicts",
    "4": "security",
    "5": "traffic",
    "6": "resilience",
    "7": "workloads",
}
_SUPPRESSION_COMMENT = re.compile(r"\s+#\s*meshc:.*$")


def render_sarif(
    diagnostics: list[Diagnostic], lines: Mapping[str, list[str]], root: Path, now: datetime
) -> str:
    rules = registered_rules()
    known = {r.code for r in rules}
    extra = sorted({d.code for d in diagnostics} - known)
    descriptors = [rule_descriptor(r) for r in rules] + [_unknown_descriptor(c) for c in extra]
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    fingerprints = finding_fingerprints(diagnostics, lines, root)
    results = [
        _result(diag, index[diag.code], root, fingerprint)
        for diag, fingerprint in zip(diagnostics, fingerprints, strict=True)
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": tool_version(),
                        "informationUri": INFORMATION_URI,
                        "rules": descriptors,
                    }
                },
                "automationDetails": {"id": "meshc/lint/"},
                "columnKind": "unicodeCodePoints",
                "originalUriBaseIds": {SRCROOT: {"description": {"text": SRCROOT_MEANING}}},
                "results": results,
                "properties": {"evaluatedAt": rfc3339(now)},
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    """A reportingDescriptor: the rule's documentation as code scanning shows it."""
    body = rule.doc.split("\n", 1)[1].strip() if "\n" in rule.doc else summary(rule)
    properties: dict[str, Any] = {"tags": [_CATEGORY.get(rule.code[2:3], "meshc")]}
    if rule.istio_code:
        properties["istioCode"] = rule.istio_code
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": summary(rule)},
        "fullDescription": {"text": body or summary(rule), "markdown": body or summary(rule)},
        "help": {"text": rule.doc, "markdown": rule.doc},
        "helpUri": rule.help_uri,
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": properties,
    }


def _unknown_descriptor(code: str) -> dict[str, Any]:
    return {"id": code, "shortDescription": {"text": f"{code} (not in this meshc's rule registry)"}}


def _result(diag: Diagnostic, rule_index: int, root: Path, fingerprint: str) -> dict[str, Any]:
    text = diag.message if not diag.hint else f"{diag.message}\nhelp: {diag.hint}"
    result: dict[str, Any] = {
        "ruleId": diag.code,
        "ruleIndex": rule_index,
        "level": _LEVEL[diag.severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": _physical_location(root, diag.span)}],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
    }
    if diag.related:
        result["relatedLocations"] = [
            _related_location(root, index, related) for index, related in enumerate(diag.related)
        ]
    if diag.suppressed_reason is not None:
        result["suppressions"] = [{"kind": "inSource", "justification": diag.suppressed_reason}]
    return result


def _physical_location(root: Path, span: Span) -> dict[str, Any]:
    region = region_of(span)
    sarif_region: dict[str, int] = {"startLine": region.line, "startColumn": region.column}
    if region.end_line is not None and region.end_column is not None:
        sarif_region["endLine"] = region.end_line
        sarif_region["endColumn"] = region.end_column
    return {"artifactLocation": artifact_location(root, span.file), "region": sarif_region}


def _related_location(root: Path, index: int, related: Related) -> dict[str, Any]:
    """A related location; one read from standard input has no artifact to point at, so
    its message names the place instead."""
    if is_pseudo_file(related.span.file):
        return {"id": index, "message": {"text": f"{related.span}: {related.message}"}}
    return {
        "id": index,
        "physicalLocation": _physical_location(root, related.span),
        "message": {"text": related.message},
    }


def artifact_location(root: Path, file: str) -> dict[str, str]:
    """A percent-encoded URI relative to %SRCROOT%, or a file: URI outside the working tree."""
    path = artifact_path(root, file)
    if PurePosixPath(path).is_absolute():
        return {"uri": "file://" + quote(path)}
    return {"uri": quote(path), "uriBaseId": SRCROOT}


def normalized_line(diag: Diagnostic, lines: Mapping[str, list[str]]) -> str:
    """The offending source line without indentation, runs of blanks or a meshc suppression."""
    source = lines.get(diag.span.file, [])
    if not 1 <= diag.span.line <= len(source):
        return ""
    text = _SUPPRESSION_COMMENT.sub("", source[diag.span.line - 1])
    return " ".join(text.split())


def finding_fingerprints(
    diagnostics: list[Diagnostic], lines: Mapping[str, list[str]], root: Path
) -> list[str]:
    """One stable hash per finding: rule, file, the line's text and the occurrence index.

    The occurrence index counts earlier findings with the same rule, file and line text,
    so two identical lines in one file keep distinct fingerprints; line numbers are left
    out so that unrelated edits above a finding do not change it.
    """
    seen: Counter[tuple[str, str, str]] = Counter()
    out = []
    for diag in diagnostics:
        key = (diag.code, artifact_path(root, diag.span.file), normalized_line(diag, lines))
        occurrence = seen[key]
        seen[key] += 1
        digest = hashlib.sha256("\x00".join((*key, str(occurrence))).encode()).hexdigest()
        out.append(digest[:32])
    return out
