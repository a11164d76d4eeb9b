"""The rule registry: every lint rule's id, severity, documentation and check.

A rule is a function `check(ctx) -> Iterable[Finding]` whose docstring is its user
documentation (What it does / Why is this bad / Example / Use instead), in the manner
of ruff's rule docs. Rules report *where* and *what*; the engine attaches the code and
the severity and applies suppressions, so no rule decides those for itself.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from compiler.diagnostics import Severity, Span

if TYPE_CHECKING:
    from compiler.lint.subjects import Subject, SubjectContext
    from compiler.model.mesh import MeshModel

HELP_URI = "https://github.com/meshc/meshc/blob/main/docs/rules.md#{anchor}"


@dataclass(frozen=True, slots=True)
class Finding:
    span: Span
    message: str
    hint: str = ""


class LintContext:
    """What a mesh-wide rule reads: the model and the evaluation time. Inside the engine
    `now` is a function reading the time as a recorded input, so only the rules that look
    at the clock are re-run when it moves."""

    __slots__ = ("_now", "model")

    def __init__(self, model: MeshModel, now: datetime | Callable[[], datetime]) -> None:
        self.model = model
        self._now = now

    @property
    def now(self) -> datetime:
        return self._now if isinstance(self._now, datetime) else self._now()


Check = Callable[[LintContext], Iterable[Finding]]
SubjectCheck = Callable[["SubjectContext", "Subject"], Iterable[Finding]]
"""A check over one subject (`compiler.lint.subjects`): what makes re-linting incremental."""


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str
    doc: str
    istio_code: str | None
    check: Check | None
    subject_check: SubjectCheck | None = None
    """Set for subject rules: the engine runs this per subject (and may reuse findings);
    `check` then runs it over every subject, for callers that want the whole model."""

    @property
    def help_uri(self) -> str:
        return HELP_URI.format(anchor=f"{self.code.lower()}-{self.name}")


REGISTRY: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.code in REGISTRY:
        raise RuntimeError(f"rule id {rule.code} registered twice")
    REGISTRY[rule.code] = rule
    return rule


def rule(
    code: str, name: str, severity: Severity, *, istio: str | None = None
) -> Callable[[Check], Check]:
    """Register a check function; its docstring's first line is the summary."""

    def decorate(check: Check) -> Check:
        doc = inspect.cleandoc(check.__doc__ or "")
        if not doc:
            raise RuntimeError(f"rule {code} has no documentation")
        summary = doc.splitlines()[0]
        register(Rule(code, name, severity, summary, doc, istio, check))
        return check

    return decorate


def subject_rule(
    code: str, name: str, severity: Severity, *, istio: str | None = None
) -> Callable[[SubjectCheck], SubjectCheck]:
    """Register a check that looks at one subject at a time (see `compiler.lint.subjects`
    for what it may read); its findings are reused while the subject's inputs are unchanged.
    """

    def decorate(check: SubjectCheck) -> SubjectCheck:
        doc = inspect.cleandoc(check.__doc__ or "")
        if not doc:
            raise RuntimeError(f"rule {code} has no documentation")

        @functools.wraps(check)
        def whole(ctx: LintContext) -> Iterator[Finding]:
            from compiler.lint.subjects import SubjectContext, subjects_of

            scoped = SubjectContext(ctx.model)
            for subject in subjects_of(ctx.model):
                yield from check(scoped, subject)

        summary = doc.splitlines()[0]
        register(Rule(code, name, severity, summary, doc, istio, whole, check))
        return check

    return decorate


def loader_rule(
    code: str, name: str, severity: Severity, doc: str, *, istio: str | None = None
) -> None:
    """Register a rule that the loader or validator reports (it has no check function)."""
    doc = inspect.cleandoc(doc)
    register(Rule(code, name, severity, doc.splitlines()[0], doc, istio, None))
