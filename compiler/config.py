"""`meshc.yaml` at the policy root: excludes and rule configuration.

```yaml
exclude: [vendor/, "*.generated.yaml"]
disable: [MC405]
severity: {MC604: error}
workloads: [../k8s/]   # manifests to check the intents against (meshc lint)
```

Every problem in it is a located finding (MC103), and the parts that are valid still apply:
a typo in one rule id must not silently switch the whole configuration off.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.lint.engine import LintConfig
from compiler.lint.registry import REGISTRY
from compiler.load.discover import CONFIG_FILE
from compiler.load.yamlnodes import Positions, parse_source

_KEYS = ("exclude", "disable", "severity", "workloads")
_HINT = "see the README section on meshc.yaml"


@dataclass(frozen=True, slots=True)
class WorkloadPath:
    """A `workloads:` entry: a path relative to meshc.yaml, and where it is written (a path
    that cannot be read is reported there)."""

    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    excludes: list[str] = field(default_factory=list)
    lint: LintConfig = field(default_factory=LintConfig)
    workloads: tuple[WorkloadPath, ...] = ()


def parse_config(raw: bytes | None) -> tuple[ProjectConfig, list[Diagnostic]]:
    """Read meshc.yaml; every problem is a located finding and the rest still applies."""
    if raw is None:
        return ProjectConfig(), []
    parsed = parse_source(CONFIG_FILE, raw)
    problems = list(parsed.problems)
    if not parsed.documents:
        return ProjectConfig(), problems
    for extra in parsed.documents[1:]:
        problems.append(
            _bad(extra.positions.value(()), "meshc.yaml: only one document is read", "merge them")
        )
    doc = parsed.documents[0]
    data = doc.data
    pos = doc.positions
    if not isinstance(data, dict):
        problems.append(
            _bad(pos.value(()), "meshc.yaml: must be a mapping (" + ", ".join(_KEYS) + ")")
        )
        return ProjectConfig(), problems
    for key in data:
        if key not in _KEYS:
            problems.append(_unknown_key(key, pos))
    excludes = [text for _, text in _string_list(data, "exclude", pos, problems)]
    disable = _string_list(data, "disable", pos, problems)
    known = [c for i, c in disable if _known_rule(c, ("disable", i), pos, problems)]
    severities = _severities(data.get("severity"), pos, problems)
    workloads = tuple(
        WorkloadPath(text, pos.value(("workloads", i)))
        for i, text in _string_list(data, "workloads", pos, problems)
    )
    lint = LintConfig(frozenset(known), severities)
    return ProjectConfig(excludes, lint, workloads), problems


def _unknown_key(key: str, pos: Positions) -> Diagnostic:
    close = difflib.get_close_matches(key, _KEYS, n=1, cutoff=0.6)
    suffix = f"; did you mean {close[0]!r}?" if close else ""
    return _bad(
        pos.key((key,)),
        f"meshc.yaml: unknown key {key!r}{suffix}",
        "allowed keys: " + ", ".join(_KEYS),
    )


def _known_rule(
    code: str, path: tuple[str | int, ...], pos: Positions, problems: list[Diagnostic]
) -> bool:
    if code in REGISTRY:
        return True
    # rule ids are not words: only suggest the id a case or O/0 slip would give
    normalized = code.strip().upper().replace("O", "0")
    suffix = f"; did you mean {normalized!r}?" if normalized in REGISTRY else ""
    span = pos.key(path) if path[0] == "severity" else pos.value(path)
    problems.append(
        _bad(span, f"meshc.yaml: unknown rule {code!r}{suffix}", "`meshc rules` lists the rule ids")
    )
    return False


def _severities(raw: Any, pos: Positions, problems: list[Diagnostic]) -> dict[str, Severity]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(
            _bad(
                pos.value(("severity",)),
                "meshc.yaml: severity must map rule ids to levels",
                "write e.g. severity: {MC604: error}",
            )
        )
        return {}
    severities: dict[str, Severity] = {}
    for code, level in raw.items():
        if not _known_rule(code, ("severity", code), pos, problems):
            continue
        if not isinstance(level, str):
            problems.append(
                _bad(
                    pos.value(("severity", code)),
                    f"meshc.yaml: severity of {code} must be a level name",
                    "use one of: " + ", ".join(s.label for s in Severity),
                )
            )
            continue
        try:
            severities[code] = Severity.parse(level)
        except ValueError as exc:
            problems.append(_bad(pos.value(("severity", code)), f"meshc.yaml: {exc}", _HINT))
    return severities


def _string_list(
    data: dict[str, Any], key: str, pos: Positions, problems: list[Diagnostic]
) -> list[tuple[int, str]]:
    """(index, text) of a list-valued key's strings; a bad entry is reported where it is."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(
            _bad(pos.value((key,)), f"meshc.yaml: {key} must be a list of strings", f"{key}: [...]")
        )
        return []
    out: list[tuple[int, str]] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            out.append((i, item))
        else:
            problems.append(
                _bad(pos.value((key, i)), f"meshc.yaml: {key}[{i}] must be a string", "quote it")
            )
    return out


def _bad(span: Span, message: str, hint: str = _HINT) -> Diagnostic:
    return Diagnostic("MC103", span, message, hint)
