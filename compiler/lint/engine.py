"""Run the registered rules and turn findings into the final, sorted diagnostics."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.lint.registry import REGISTRY, Check, LintContext, SubjectCheck
from compiler.lint.subjects import (
    Fingerprints,
    LintCache,
    Subject,
    SubjectContext,
    fingerprints,
    subjects_of,
)
from compiler.lint.suppress import Suppression, scan_suppressions

if TYPE_CHECKING:
    from compiler.model.mesh import MeshModel, ServiceKey


@dataclass(frozen=True, slots=True)
class LintConfig:
    """Rule configuration from `meshc.yaml`: disabled rules and severity overrides."""

    disable: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)


def run_rules(
    ctx: LintContext,
    *,
    digests: Mapping[str, str] | None = None,
    cache: LintCache | None = None,
) -> list[Diagnostic]:
    """Every rule's findings (code, span, message, hint; severities come in `finalize`).

    With a `cache` (and the content hash of every file in `digests`), subject rules reuse
    the findings of every subject whose input fingerprint is unchanged; the result is the
    same as without one."""
    diagnostics: list[Diagnostic] = []
    subject_rules: list[tuple[str, SubjectCheck]] = []
    for code, registered in sorted(REGISTRY.items()):
        if registered.subject_check is not None:
            subject_rules.append((code, registered.subject_check))
        elif registered.check is not None:
            diagnostics.extend(_run_global(code, registered.check, ctx))
    if subject_rules:
        diagnostics.extend(_run_subject_rules(ctx.model, subject_rules, digests, cache))
    return diagnostics


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


def _run_subject_rules(
    model: MeshModel,
    rules: list[tuple[str, SubjectCheck]],
    digests: Mapping[str, str] | None,
    cache: LintCache | None,
) -> list[Diagnostic]:
    scoped = SubjectContext(model)
    subjects = subjects_of(model)
    if cache is None or digests is None:
        out: list[Diagnostic] = []
        for subject in subjects.values():
            for code, check in rules:
                out.extend(_run_subject(code, check, scoped, subject))
        return out
    try:
        prints = fingerprints(model, digests, memo=cache.references, owns=cache.owns)
    except KeyError:  # a file without a digest: nothing can be reused safely
        return _run_subject_rules(model, rules, None, None)
    run = _SubjectRun(tuple(code for code, _ in rules), rules, scoped, cache)
    state: Fingerprints = model.lint_index["fingerprints"]
    change = model.change
    previous = change.previous() if change is not None else None
    index = previous.lint_index if previous is not None else {}
    before: SubjectFindings | None = index.get("subject_findings")
    if state.redone is not None and before is not None and before.codes == run.codes:
        before_prints = index["fingerprints"].prints
        found = _patched_findings(before, before_prints, state.redone, subjects, prints, run)
    else:
        found = SubjectFindings(run.codes, {}, set())
        for key, subject in subjects.items():
            entry = (key, prints[key])
            found.used.add(entry)
            found.by_subject[key] = run.findings(entry, subject)
    model.lint_index["subject_findings"] = found
    cache.retain(found.used)
    cache.reused = len(subjects) - run.computed
    return list(itertools.chain.from_iterable(found.by_subject.values()))


@dataclass(slots=True)
class SubjectFindings:
    """One model's subject findings, by subject, and the cache entries they came from."""

    codes: tuple[str, ...]
    by_subject: dict[ServiceKey, list[Diagnostic]]
    used: set[tuple[ServiceKey, str]]


@dataclass(slots=True)
class _SubjectRun:
    codes: tuple[str, ...]
    rules: list[tuple[str, SubjectCheck]]
    scoped: SubjectContext
    cache: LintCache
    computed: int = 0
    """Subjects whose findings no cache entry held."""

    def findings(self, entry: tuple[ServiceKey, str], subject: Subject) -> list[Diagnostic]:
        """Every rule's findings for one subject, in rule order, from the cache when its
        fingerprint is known."""
        joined = self.cache.flat.get(entry)
        if joined is not None and joined[0] == self.codes:
            return joined[1]
        stored = self.cache.lookup(*entry)
        self.computed += not stored
        mine: list[Diagnostic] = []
        for code, check in self.rules:
            found = stored.get(code)
            if found is None:
                found = stored[code] = _run_subject(code, check, self.scoped, subject)
            mine.extend(found)
        self.cache.flat[entry] = (self.codes, mine)
        return mine


def _patched_findings(
    before: SubjectFindings,
    before_prints: dict[ServiceKey, str],
    redone: frozenset[ServiceKey],
    subjects: dict[ServiceKey, Subject],
    prints: dict[ServiceKey, str],
    run: _SubjectRun,
) -> SubjectFindings:
    """The previous model's findings with those of the subjects whose fingerprint was
    recomputed (`redone`) replaced: every other subject's fingerprint is unchanged."""
    by_subject = dict(before.by_subject)
    used = set(before.used)
    for key in redone:
        used.discard((key, before_prints.get(key, "")))
        subject = subjects.get(key)
        if subject is None:
            by_subject.pop(key, None)
            continue
        entry = (key, prints[key])
        used.add(entry)
        by_subject[key] = run.findings(entry, subject)
    return SubjectFindings(before.codes, by_subject, used)


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
