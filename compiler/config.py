"""`meshc.yaml` at the policy root: excludes and rule configuration.

```yaml
exclude: [vendor/, "*.generated.yaml"]
disable: [MC405]
severity: {MC604: error}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.lint.engine import LintConfig
from compiler.lint.registry import REGISTRY
from compiler.load.discover import CONFIG_FILE
from compiler.load.yamlnodes import parse_source

_KEYS = ("exclude", "disable", "severity")


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    excludes: list[str] = field(default_factory=list)
    lint: LintConfig = field(default_factory=LintConfig)


def parse_config(raw: bytes | None) -> tuple[ProjectConfig, list[Diagnostic]]:
    """Read meshc.yaml; every problem is a located finding and the rest still applies."""
    if raw is None:
        return ProjectConfig(), []
    parsed = parse_source(CONFIG_FILE, raw)
    problems = list(parsed.problems)
    if not parsed.documents:
        return ProjectConfig(), problems
    doc = parsed.documents[0]
    data = doc.data
    pos = doc.positions
    if not isinstance(data, dict):
        return ProjectConfig(), [*problems, _bad(pos.value(()), "meshc.yaml must be a mapping")]
    for key in data:
        if key not in _KEYS:
            problems.append(
                _bad(pos.key((key,)), f"unknown key {key!r} in meshc.yaml", "allowed: " + ", ".join(_KEYS))
            )
    excludes = _string_list(data, "exclude", pos, problems)
    disable = _string_list(data, "disable", pos, problems)
    for i, code in enumerate(disable):
        if code not in REGISTRY:
            problems.append(_bad(pos.value(("disable", i)), f"unknown rule {code!r}"))
    severities: dict[str, Severity] = {}
    raw_sev = data.get("severity", {})
    if not isinstance(raw_sev, dict):
        problems.append(_bad(pos.value(("severity",)), "severity must map rule ids to levels"))
        raw_sev = {}
    for code, level in raw_sev.items():
        if code not in REGISTRY:
            problems.append(_bad(pos.key(("severity", code)), f"unknown rule {code!r}"))
            continue
        try:
            severities[code] = Severity.parse(str(level))
        except ValueError as exc:
            problems.append(_bad(pos.value(("severity", code)), str(exc)))
    return ProjectConfig(excludes, LintConfig(frozenset(disable), severities)), problems


def _string_list(data: dict[str, object], key: str, pos: object, problems: list[Diagnostic]) -> list[str]:
    value = data.get(key, [])
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    problems.append(_bad(pos.value((key,)), f"{key} must be a list of strings"))  # type: ignore[attr-defined]
    return []


def _bad(span: Span, message: str, hint: str = "see the README section on meshc.yaml") -> Diagnostic:
    return Diagnostic("MC103", span, message, hint)
