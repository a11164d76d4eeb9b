"""The rule catalogue as text (for `meshc rules`) and markdown (docs/rules.md).

A rule's docstring *is* its documentation, so the docs page is generated from the
registry and a test fails when the checked-in page is stale; `Rule.help_uri` points at
the heading anchors this module writes (`## MC201 unknown-service` -> `#mc201-unknown-service`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from compiler.lint.registry import Rule
from compiler.workloads.manifests import CODE as MANIFEST_CODE
from compiler.workloads.registry import WORKLOAD_CHECKS

REGENERATE = "meshc rules --format markdown > docs/rules.md"

CATEGORIES = {
    "0": "Tool and suppressions (MC0xx)",
    "1": "Schema and loading (MC1xx)",
    "2": "References (MC2xx)",
    "3": "Conflicts (MC3xx)",
    "4": "Security (MC4xx)",
    "5": "Traffic (MC5xx)",
    "6": "Resilience (MC6xx)",
    "7": "Workloads (MC7xx)",
    "8": "Live cluster (MC8xx)",
}


def category(rule: Rule) -> str:
    digit = rule.code[2:3]
    return CATEGORIES.get(digit, f"Other (MC{digit}xx)")


def anchor(rule: Rule) -> str:
    """The GitHub heading slug of the rule's section: lower case, spaces to dashes."""
    return f"{rule.code.lower()}-{rule.name}"


_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)[.!?](?=\s|$)")


def summary(rule: Rule) -> str:
    """The rule's first sentence, whole: the registry's summary is the docstring's first
    line, which a wrapped docstring cuts mid-sentence ("... without declared")."""
    paragraph = " ".join(rule.doc.strip().split("\n\n", 1)[0].split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph[: end.end()] if end else paragraph


def rules_text(rules: Sequence[Rule]) -> str:
    """One aligned line per rule: code, name, severity, summary."""
    header = ("CODE", "NAME", "SEVERITY", "SUMMARY")
    rows = [(r.code, r.name, r.severity.label, summary(r)) for r in rules]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def rule_text(rule: Rule) -> str:
    """One rule's full documentation for a terminal."""
    facts = [rule.severity.label]
    if rule.istio_code:
        facts.append(f"istioctl analyze {rule.istio_code}")
    return (
        f"{rule.code} {rule.name} ({'; '.join(facts)})\n\n{rule.doc}\n\nSee also: {rule.help_uri}\n"
    )


def _table_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def rule_markdown(rule: Rule, *, level: int = 2) -> str:
    """One rule's section: heading (the anchor `help_uri` links to), facts, the docstring."""
    facts = [f"**Severity:** {rule.severity.label}"]
    if rule.istio_code:
        facts.append(f"**Istio:** `{rule.istio_code}`")
    if rule.code in WORKLOAD_CHECKS or rule.code == MANIFEST_CODE:
        facts.append("checked against the workload manifests (`meshc lint --workloads`)")
    elif rule.code.startswith("MC8"):
        facts.append(
            "reported by the live preflight (`meshd run --target kubernetes`, `meshd diff`)"
        )
    elif rule.check is None:
        facts.append("reported by the loader/validator")
    heading = "#" * level
    return f"{heading} {rule.code} {rule.name}\n\n{' · '.join(facts)}\n\n{rule.doc.strip()}\n"


def rules_markdown(rules: Sequence[Rule]) -> str:
    """The whole catalogue: an index table, then one section per rule grouped by category."""
    out = [
        f"<!-- Generated from the rule registry; do not edit. Regenerate: {REGENERATE} -->",
        "",
        "# meshc lint rules",
        "",
        "Every finding names its rule. Suppress one occurrence with a reason:",
        "`# meshc: ignore[MC401] reason: ...` on the line (or the line above); disable or",
        "re-grade a rule for the whole repository in `meshc.yaml`.",
        "",
        "| Code | Name | Severity | Summary |",
        "| --- | --- | --- | --- |",
    ]
    for rule in rules:
        out.append(
            f"| [{rule.code}](#{anchor(rule)}) | {rule.name} | {rule.severity.label} "
            f"| {_table_cell(summary(rule))} |"
        )
    current = None
    for rule in rules:
        if category(rule) != current:
            current = category(rule)
            out.extend(["", f"## {current}"])
        out.extend(["", rule_markdown(rule, level=3).rstrip()])
    return "\n".join(out) + "\n"
