"""The access questions the fidelity tests ask three ways, and two of the three answers.

A *question* is (caller, callee workload, method, path, port, headers). The effective model
answers it through the service's `ServiceRecord` (`compiler.plan.requests.access_shape`,
what every backend and the plan read); the Istio-semantics oracle (`tests/oracle/istio.py`)
answers it from the rendered AuthorizationPolicies alone. Real Envoy, the third answer,
lives in `test_envoy_fidelity.py`.

Callers are every principal the mesh can tell apart: each declared service's identity, each
ingress gateway's, every identity a rendered policy names, and one stranger per namespace
(an identity no rule names, which only namespace and `*` sources admit).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compiler.api import Compilation
from compiler.model.access import gateway_spiffe, spiffe_namespace
from compiler.model.mesh import ServiceKey, ServiceView
from compiler.model.records import record_of
from compiler.plan.requests import AccessShape, access_shape, allowed
from compiler.plan.requests import Request as ShapeRequest
from tests.oracle.istio import Request, decide

SAMPLE_PATHS = (
    "/",
    "/api",
    "/api/",
    "/api/v1/x",
    "/exact/path",
    "/exact/path/",
    "/a b",
    "/ü",
    "/x.json",
    "/zzz",
)
"""Paths on both sides of every pattern the generators write (exact, `prefix*`, `*suffix`,
`/a/*` against `/a`)."""
UNNAMED_METHOD = "PROPFIND"
"""A method no rule can name."""
UNUSED_PORT = 4321
"""A container port no generated service listens on (a port-restricted rule's outside)."""

Doc = Mapping[str, Any]


@dataclass(frozen=True, order=True, slots=True)
class Caller:
    spiffe: str
    """`spiffe://<trust domain>/ns/<ns>/sa/<sa>`."""
    label: str

    @property
    def namespace(self) -> str:
        return spiffe_namespace(self.spiffe) or "~"

    @property
    def principal(self) -> str:
        """As Istio's `principals` read it (no `spiffe://`)."""
        return self.spiffe.removeprefix("spiffe://")


@dataclass(frozen=True, order=True, slots=True)
class Question:
    caller: Caller
    callee: ServiceKey
    method: str
    path: str
    port: int
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        sent = "".join(f" [{name}: {value}]" for name, value in self.headers)
        return (
            f"{self.caller.label} → {self.callee}: {self.method} {self.path} "
            f"(port {self.port}){sent}"
        )


def callers(compilation: Compilation, policies: Sequence[Doc]) -> list[Caller]:
    """Every principal worth asking about (see the module docstring)."""
    model = compilation.model
    found: dict[str, str] = {}
    for view in model.services.values():
        found.setdefault(view.spiffe_id, str(view.key))
    for gateway in model.settings.ingress_gateways:
        found.setdefault(gateway_spiffe(model, gateway), f"gateway {gateway.name}")
    for principal in _named_principals(policies):
        found.setdefault(f"spiffe://{principal}", principal)
    namespaces = {view.key.namespace for view in model.services.values()}
    namespaces.update(_named_namespaces(policies))
    trust_domain = model.settings.trust_domain
    for namespace in namespaces:
        found.setdefault(f"spiffe://{trust_domain}/ns/{namespace}/sa/~stranger", "stranger")
    return sorted(Caller(spiffe, label) for spiffe, label in found.items())


def _sources(policies: Sequence[Doc]) -> Iterator[Doc]:
    for policy in policies:
        for rule in (policy.get("spec") or {}).get("rules") or []:
            for entry in rule.get("from") or []:
                yield entry.get("source") or {}


def _named_principals(policies: Sequence[Doc]) -> set[str]:
    return {
        principal
        for source in _sources(policies)
        for principal in source.get("principals") or []
        if "*" not in principal
    }


def _named_namespaces(policies: Sequence[Doc]) -> set[str]:
    return {
        namespace
        for source in _sources(policies)
        for namespace in source.get("namespaces") or []
        if "*" not in namespace
    }


def authorization_policies(objects: Sequence[Doc]) -> list[Doc]:
    return [obj for obj in objects if obj.get("kind") == "AuthorizationPolicy"]


def named_methods(policies: Sequence[Doc]) -> list[str]:
    """Every method a rendered rule names, and one none can."""
    named = {
        method
        for policy in policies
        for rule in (policy.get("spec") or {}).get("rules") or []
        for entry in rule.get("to") or []
        for method in (entry.get("operation") or {}).get("methods") or []
    }
    return [*sorted(named), UNNAMED_METHOD]


def path_probes(policies: Sequence[Doc]) -> list[str]:
    """`SAMPLE_PATHS`, and around each path a rendered rule names: the pattern's own
    instance and its near misses (`/a/*` → `/a/x` and `/a`; `*.json` → `/x.json` and
    `/x.jso`; `/a` → `/a` and `/a/`)."""
    found = set(SAMPLE_PATHS)
    for policy in policies:
        for rule in (policy.get("spec") or {}).get("rules") or []:
            for entry in rule.get("to") or []:
                for pattern in (entry.get("operation") or {}).get("paths") or []:
                    found.update(_near(str(pattern)))
    return sorted(found)


def _near(pattern: str) -> set[str]:
    if pattern == "*":
        return set()
    if pattern.endswith("*"):
        stem = pattern[:-1]
        return {stem + "x", stem.rstrip("/") or "/"}
    if pattern.startswith("*"):
        return {"/x" + pattern[1:], "/x" + pattern[1:-1]}
    return {pattern, pattern + "/"}


def header_probes(policies: Sequence[Doc]) -> list[tuple[tuple[str, str], ...]]:
    """No header; and for each condition value, that header set to it (a `prefix*` or
    `*suffix` value with a filler), so every condition can both match and fail."""
    probes: set[tuple[tuple[str, str], ...]] = {()}
    for policy in policies:
        for rule in (policy.get("spec") or {}).get("rules") or []:
            for condition in rule.get("when") or []:
                name = str(condition["key"]).removeprefix("request.headers[").removesuffix("]")
                for value in condition.get("values") or []:
                    probes.add(((name, _instance(str(value))),))
    return sorted(probes)


def _instance(pattern: str) -> str:
    if pattern == "*":
        return "any"
    if pattern.endswith("*"):
        return pattern[:-1] + "x"
    if pattern.startswith("*"):
        return "x" + pattern[1:]
    return pattern


def workload_labels(view: ServiceView) -> list[dict[str, str]]:
    """The labels of each of the service's workloads (one per version, or the selector)."""
    versions = sorted(view.spec.versions or {})
    return [view.version_labels(v) for v in versions] or [dict(view.selector)]


def container_ports(view: ServiceView) -> list[int]:
    return sorted({int(port.container_port) for port in view.spec.ports})


def model_shapes(compilation: Compilation) -> dict[ServiceKey, AccessShape]:
    """Each server's live access as the effective model states it."""
    model = compilation.model
    default_allow = model.settings.default_action == "allow"
    return {
        key: access_shape(
            record_of(model, key, compilation.rollout_state),
            default_allow=default_allow,
            trust_domain=model.settings.trust_domain,
        )
        for key, view in model.services.items()
        if not view.client_only
    }


def model_allows(shape: AccessShape, question: Question) -> bool:
    probe = ShapeRequest(question.method, question.path, question.port, question.headers)
    return allowed(shape, (question.caller.spiffe, question.caller.namespace), probe)


def istio_allows(
    policies: Sequence[Doc],
    question: Question,
    *,
    labels: Mapping[str, str],
    root_namespace: str,
) -> bool:
    request = Request(
        principal=question.caller.principal,
        namespace=question.caller.namespace,
        method=question.method,
        path=question.path,
        port=question.port,
        headers=dict(question.headers),
    )
    return decide(
        policies,
        request,
        workload_labels=labels,
        workload_namespace=question.callee.namespace,
        root_namespace=root_namespace,
    )
