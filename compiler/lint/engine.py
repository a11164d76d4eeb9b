"""Run the registered rules and turn findings into the final, sorted diagnostics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.engine import Engine
from compiler.lint.registry import REGISTRY, Check, LintContext, SubjectCheck
from compiler.lint.subjects import Subject, SubjectContext, subject, subject_keys
from compiler.lint.suppress import Suppression, scan_suppressions
from compiler.model.mesh import ServiceKey
from compiler.model.queries import MeshReader, now


@dataclass(frozen=True, slots=True)
class LintConfig:
    """Rule configuration from `meshc.yaml`: disabled rules and severity overrides."""

    disable: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)


def rule_findings(db: Engine) -> tuple[Diagnostic, ...]:
    """Every rule's raw findings for the engine's current inputs (code, span, message,
    hint; severities come in `finalize`): each mesh-wide rule as a query of its own, and
    all subject rules as one query per subject, so a revision re-runs exactly the rules
    and subjects whose recorded reads changed."""
    found: list[Diagnostic] = []
    for code in _global_codes():
        found.extend(db.query(global_rule_findings, code))
    for key in db.query(subject_keys):
        found.extend(db.query(subject_findings, key))
    return tuple(found)


def _global_codes() -> list[str]:
    return sorted(
        code
        for code, registered in REGISTRY.items()
        if registered.subject_check is None and registered.check is not None
    )


def _subject_rules() -> list[tuple[str, SubjectCheck]]:
    return [
        (code, registered.subject_check)
        for code, registered in sorted(REGISTRY.items())
        if registered.subject_check is not None
    ]


def global_rule_findings(db: Engine, code: str) -> tuple[Diagnostic, ...]:
    check = REGISTRY[code].check
    assert check is not None
    return tuple(_run_global(code, check, LintContext(MeshReader(db), lambda: db.query(now))))


def subject_findings(db: Engine, key: ServiceKey) -> tuple[Diagnostic, ...]:
    """Every subject rule's findings for one subject, in rule order."""
    scoped = SubjectContext(MeshReader(db))
    found = db.query(subject, key)
    out: list[Diagnostic] = []
    for code, check in _subject_rules():
        out.extend(_run_subject(code, check, scoped, found))
    return tuple(out)


def _run_global(code: str, check: Check, ctx: LintContext) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    try:
        for finding in check(ctx):
            found.append(Diagnostic(code, finding.span, finding.message, finding.hint))
    except Exception as exc:  # a bug in one rule must not hide the others' findings
        found.append(_internal_error(code, exc))
    return found


def _run_subject(
    code: str, check: SubjectCheck, ctx: SubjectContext, subject: Subject
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    try:
        for finding in check(ctx, subject):
            found.append(Diagnostic(code, finding.span, finding.message, finding.hint))
    except Exception as exc:  # as above, for one subject
        found.append(_internal_error(code, exc))
    return found


def _internal_error(code: str, exc: Exception) -> Diagnostic:
    return Diagnostic(
        "MC000",
        Span("<meshc>"),
        f"internal error in rule {code}: {type(exc).__name__}: {exc}",
        "please report this to the meshc maintainers",
    )


def finalize(
    diagnostics: Iterable[Diagnostic],
    *,
    config: LintConfig,
    lines: Mapping[str, list[str]] | None = None,
    suppressions: Mapping[str, list[Suppression]] | None = None,
) -> list[Diagnostic]:
    """Attach severities, apply configuration and inline suppressions, dedupe and sort.

    Suppressions come from `suppressions` (each file's `scan_suppressions(lines)`, files
    without any may be left out) or else are scanned from each file's `lines`."""
    if suppressions is None:
        suppressions = {file: scan_suppressions(text) for file, text in (lines or {}).items()}
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
