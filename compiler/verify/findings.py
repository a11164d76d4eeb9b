"""CRD problems as findings (MC190) located at the intent line that produced the field.

An emitted object names its intent document in the `meshc.io/source` annotation; within
that document (and the others the object combines), the rejected field is found by its
own name or, where lowering renamed it, by the intent field it came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compiler.artifacts import ArtifactKey
from compiler.diagnostics import Diagnostic, Span
from compiler.verify.cel import FieldPath
from compiler.verify.crds import CrdReport

if TYPE_CHECKING:
    from compiler.api import Compilation
    from compiler.validate import Intent

CODE = "MC190"
"""Diagnostic code of an emitted object the user's CRDs reject."""

INTENT_FIELDS: dict[str, tuple[str, ...]] = {
    "consecutive5xxErrors": ("consecutive5xx",),
    "http1MaxPendingRequests": ("maxPendingRequests",),
    "http2MaxRequests": ("maxRequests",),
    "connectionPool": ("circuitBreaker",),
    "outlierDetection": ("circuitBreaker",),
    "httpHeaderName": ("header",),
    "httpCookie": ("cookie",),
    "useSourceIp": ("sourceIP",),
    "consistentHash": ("consistentHash", "loadBalancer"),
    "simple": ("loadBalancer",),
    "portLevelSettings": ("port",),
    "mirrorPercentage": ("mirror",),
    "weight": ("split", "steps"),
    "subset": ("version", "versions"),
    "subsets": ("versions",),
    "principals": ("from",),
    "namespaces": ("from",),
    "source": ("from",),
    "operation": ("to",),
    "when": ("headers",),
    "egress": ("calls",),
    "hosts": ("calls",),
    "workloadSelector": ("selector",),
    "matchLabels": ("selector",),
    "mtls": ("mtls",),
}
"""Istio field → the intent fields it is lowered from, where the names differ."""


def crd_diagnostics(report: CrdReport, compilation: Compilation) -> list[Diagnostic]:
    """Each problem as a Diagnostic located at the intent line that produced the field."""
    intents = {
        intent.ref: intent for result in compilation.files.values() for intent in result.intents
    }
    out = []
    for problem in report.problems:
        intent = intents.get(problem.source)
        if intent is None:
            span = Span(problem.source.split("#")[0] or "-")
        else:
            span = locate([intent, *related_intents(compilation, problem.key)], problem.path)
        where = ".".join(str(p) for p in problem.path) or "object"
        out.append(
            Diagnostic(
                CODE,
                span,
                f"{problem.key} {where}: {problem.message}",
                "set Mesh.spec.istioVersion to the Istio you run, "
                "or pass that version's CRDs with --crds",
            )
        )
    return sorted(out, key=Diagnostic.sort_key)


def related_intents(compilation: Compilation, key: ArtifactKey) -> list[Intent[Any]]:
    """The other documents one object combines (a DestinationRule: its Service and the
    Resilience; a VirtualService: its Rollout and Resilience)."""
    from compiler.model.mesh import ServiceKey

    view = compilation.model.services.get(ServiceKey(key.scope, key.name))
    if view is None:
        return []
    related: list[Intent[Any]] = [*view.rollouts, *view.resilience, *view.policies, view.intent]
    return sorted(related, key=lambda i: i.ref)


def locate(intents: list[Intent[Any]], path: FieldPath) -> Span:
    """The intent line behind an emitted field: the deepest field of `path` that one of the
    documents (the annotated source first) spells, directly or by its meshc name."""
    for segment in reversed(path):
        if not isinstance(segment, str):
            continue
        for name in (segment, *INTENT_FIELDS.get(segment, ())):
            for intent in intents:
                found = _find_key(intent.doc.data.get("spec"), name, ("spec",))
                if found is not None:
                    return intent.doc.key_span(*found)
    first = intents[0]
    return first.doc.span("spec") if "spec" in first.doc.data else first.doc.span()


def _find_key(node: Any, name: str, path: FieldPath) -> FieldPath | None:
    if isinstance(node, dict):
        if name in node:
            return (*path, name)
        for key, child in node.items():
            found = _find_key(child, name, (*path, key))
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found = _find_key(child, name, (*path, index))
            if found is not None:
                return found
    return None
