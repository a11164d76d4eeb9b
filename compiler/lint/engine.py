"""Run the registered rules and turn findings into the final, sorted diagnostics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.lint.registry import REGISTRY, LintContext
from compiler.lint.suppress import Suppression, scan_suppressions


@dataclass(frozen=True, slots=True)
class LintConfig:
    """Rule configuration from `meshc.yaml`: disabled rules and severity overrides."""

    disable: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)


def run_rules(ctx: LintContext) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []
    for code, registered in sorted(REGISTRY.items()):
        if registered.check is None:
            continue
        try:
            for finding in registered.check(ctx):
                diagnostics.append(Diagnostic(code, finding.span, finding.message, finding.hint))
        except Exception as exc:  # a bug in one rule must not hide the others' findings
            diagnostics.append(
                Diagnostic(
                    "MC000",
                    Span("<meshc>"),
                    f"internal error in rule {code}: {type(exc).__name__}: {exc}",
                    "please report this to the meshc maintainers",
                )
            )
    return diagnostics


def finalize(
    diagnostics: Iterable[Diagnostic],
    *,
    lines: Mapping[str, list[str]],
    config: LintConfig,
) -> list[Diagnostic]:
    """Attach severities, apply configuration and inline suppressions, dedupe and sort."""
    suppressions = {file: scan_suppressions(text) for file, text in lines.items()}
    out: dict[tuple[str, Span, str], Diagnostic] = {}
    for diag in diagnostics:
        if diag.code in config.disable:
            continue
        registered = REGISTRY.get(diag.code)
        severity = config.severity.get(
            diag.code, registered.severity if registered else Severity.ERROR
        )
        diag = replace(diag, severity=severity)
        reason = _suppressed(diag, suppressions.get(diag.span.file, []))
        if reason is not None:
            diag = replace(diag, suppressed_reason=reason)
        out.setdefault((diag.code, diag.span, diag.message), diag)
    for file, found in suppressions.items():
        for bad in _invalid_suppressions(file, found):
            out.setdefault((bad.code, bad.span, bad.message), bad)
    return sorted(out.values(), key=Diagnostic.sort_key)


def _suppressed(diag: Diagnostic, suppressions: list[Suppression]) -> str | None:
    for sup in suppressions:
        if sup.reason and diag.code in sup.codes and sup.applies_to == diag.span.line:
            return sup.reason
    return None


def _invalid_suppressions(file: str, found: list[Suppression]) -> Iterable[Diagnostic]:
    for sup in found:
        span = Span(file, sup.line, sup.col, sup.line, sup.col)
        if sup.reason is None:
            yield Diagnostic(
                "MC001",
                span,
                "suppression has no reason, so it suppresses nothing",
                "write it as '# meshc: ignore[MCxxx] reason: <why this is acceptable>'",
                severity=Severity.ERROR,
            )
        unknown = sorted(code for code in sup.codes if code not in REGISTRY)
        if unknown or not sup.codes:
            yield Diagnostic(
                "MC001",
                span,
                f"suppression names unknown rule(s): {', '.join(unknown) or '(none)'}",
                "use the ids that `meshc rules` lists",
                severity=Severity.ERROR,
            )
