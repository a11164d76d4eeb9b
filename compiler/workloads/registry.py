"""The workload rules: documented in the one rule registry, run by `queries.workload_findings`.

A workload check is a function of the model and an `Inventory` (never of YAML or of a
cluster client), so the reconciler can run the same checks over live objects. The rule
registry (`compiler.lint.registry`) holds its code, severity and documentation like any
other rule's; the check itself lives here, because a mesh-wide lint rule cannot see the
manifests.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from compiler.diagnostics import Related, Severity, Span
from compiler.lint.registry import Rule, register
from compiler.model.mesh import MeshModel
from compiler.workloads.objects import Inventory


@dataclass(frozen=True, slots=True)
class WorkloadFinding:
    """Where (an intent's line), what, the remedy, and the manifest places that explain it."""

    span: Span
    message: str
    hint: str = ""
    related: tuple[Related, ...] = ()


WorkloadCheck = Callable[[MeshModel, Inventory], Iterable[WorkloadFinding]]

WORKLOAD_CHECKS: dict[str, WorkloadCheck] = {}


def workload_rule(
    code: str, name: str, severity: Severity, *, istio: str | None = None
) -> Callable[[WorkloadCheck], WorkloadCheck]:
    """Register a workload check; its docstring is the rule's documentation."""

    def decorate(check: WorkloadCheck) -> WorkloadCheck:
        doc = inspect.cleandoc(check.__doc__ or "")
        if not doc:
            raise RuntimeError(f"rule {code} has no documentation")
        register(Rule(code, name, severity, doc.splitlines()[0], doc, istio, None))
        WORKLOAD_CHECKS[code] = check
        return check

    return decorate


def load_workload_checks() -> None:
    """Import every workload check so its rule registers (idempotent)."""
    from compiler.workloads import gateway_checks as _gateway  # noqa: F401
    from compiler.workloads import identity_checks as _identity  # noqa: F401
    from compiler.workloads import manifests as _manifests  # noqa: F401
    from compiler.workloads import port_checks as _ports  # noqa: F401
    from compiler.workloads import selector_checks as _selectors  # noqa: F401
