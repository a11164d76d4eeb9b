"""The effective record of one service: what every backend and the plan's meaning read.

A `ServiceRecord` is the service's view with everything resolved that consumers would
otherwise each recompute from the intents: every access rule with its sources resolved to
principals and its ports to the container ports the workload listens on, the traffic in
force at the rollout state (weights, A/B matches, mirror), and the effective route and
cluster settings per port, with Istio's default retry policy made explicit where no
Resilience declares retries. Backends turn records into objects; only lint rules, which
point at the user's lines, read the intents behind them.

`service_record(db, key)` is the engine query (its reads are recorded like any other);
`record_of(model, key)` builds one from any `MeshModel`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from compiler.engine import Engine
from compiler.kinds.access_policy.model import AccessPolicyDocument, Rule
from compiler.kinds.resilience.model import (
    ISTIO_DEFAULT_ATTEMPTS,
    ISTIO_DEFAULT_RETRY_ON,
    CircuitBreaker,
    HashLoadBalancer,
    ResilienceSpec,
)
from compiler.kinds.resilience.model import Retries as DeclaredRetries
from compiler.kinds.rollout.model import MatchRule, Mirror, RolloutDocument
from compiler.kinds.service.model import Port
from compiler.model.access import ResolvedSource, resolve_source
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.model.queries import MeshReader, RolloutSteps
from compiler.model.traffic import (
    current_rollout,
    live_weights,
    port_resilience,
    rollout_state_key,
    service_resilience,
    target_port,
)
from compiler.validate import Intent


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    """One AccessPolicy rule with everything it names resolved."""

    policy: Intent[AccessPolicyDocument]
    """Where it is written (provenance for outputs, spans for lint)."""
    index: int
    rule: Rule
    mode: Literal["enforce", "shadow"]
    sources: tuple[ResolvedSource, ...]
    ports: tuple[int | None, ...]
    """`to.ports` as container ports, in order (None: names no port of the service)."""

    @property
    def action(self) -> Literal["allow", "deny"]:
        return self.rule.action

    def live_sources(self, trust_domain: str) -> tuple[frozenset[str], frozenset[str]]:
        """(principals, namespaces) the rule matches as enforced: SPIFFE IDs or `*`. A
        service no Service declares is left out of an allow (fail closed) and matched by
        its default account in a deny (denying more)."""
        principals: set[str] = set()
        namespaces: set[str] = set()
        for source in self.sources:
            found = source.principal
            if found.kind == "any":
                principals.add("*")
            elif found.kind == "namespace":
                namespaces.add(found.value)
            elif source.declared:
                principals.update(each.value for each in source.principals)
            elif self.action == "deny" and source.service is not None:
                key = source.service
                principals.add(f"spiffe://{trust_domain}/ns/{key.namespace}/sa/{key.name}")
        return frozenset(principals), frozenset(namespaces)

    def live_ports(self) -> tuple[int, ...] | None:
        """The container ports the rule matches as enforced (None: any). An allow keeps the
        ports that resolve (none: the rule matches nothing); a deny with a port that does
        not resolve matches every port (denying more)."""
        if not self.rule.to.ports:
            return None
        known = tuple(sorted({port for port in self.ports if port is not None}))
        if self.action == "deny" and None in self.ports:
            return None
        return known


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    per_try_timeout: str | None
    retry_on: tuple[str, ...]
    declared: bool
    """False: Istio's default policy, which applies because none is declared."""


@dataclass(frozen=True, slots=True)
class RouteSettings:
    """What the routes of one port carry besides destinations (as declared)."""

    timeout: str | None
    retries: DeclaredRetries | None


@dataclass(frozen=True, slots=True)
class PortRecord:
    """One service port with its effective settings."""

    port: int
    name: str
    protocol: str
    target_port: int
    timeout: str | None
    retries: RetryPolicy | None
    """None on TCP ports (never retried)."""
    circuit_breaker: CircuitBreaker | None
    load_balancer: str | HashLoadBalancer | None


@dataclass(frozen=True, slots=True)
class TrafficRecord:
    """The traffic in force: the Rollout, its live weights at the current step, its A/B
    rules (evaluated before the split) and its mirror. No Rollout: all three empty."""

    rollout: Intent[RolloutDocument] | None
    weights: tuple[tuple[str, int], ...]
    matches: tuple[MatchRule, ...]
    mirror: Mirror | None


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    view: ServiceView
    rules: tuple[ResolvedRule, ...]
    """Every rule of the service's AccessPolicies, policies by reference, rules in order."""
    traffic: TrafficRecord
    general: RouteSettings
    """The service-wide route settings (timeout, retries)."""
    port_routes: tuple[tuple[int, RouteSettings], ...]
    """HTTP ports whose own Resilience sets a timeout or retries, with those settings
    falling back to the service-wide ones, ports sorted."""
    resilience: ResilienceSpec | None
    """The service-wide Resilience."""
    port_resilience: tuple[tuple[int, ResilienceSpec], ...]
    ports: tuple[PortRecord, ...]

    @property
    def key(self) -> ServiceKey:
        return self.view.key


def service_record(db: Engine, key: ServiceKey) -> ServiceRecord:
    """The record of the declared service `key`."""
    return record_of(MeshReader(db), key, RolloutSteps(db))


def record_of(model: MeshModel, key: ServiceKey, rollout_state: Mapping[str, int]) -> ServiceRecord:
    view = model.services[key]
    whole = service_resilience(view)
    per_port = port_resilience(view)
    general = _route_settings(whole)
    tcp = {int(p.port) for p in view.spec.ports if p.protocol == "tcp"}
    port_routes = tuple(
        (port, _route_settings(spec, general))
        for port, spec in per_port.items()
        if port not in tcp and (spec.timeout is not None or spec.retries is not None)
    )
    return ServiceRecord(
        view=view,
        rules=_rules(view, model),
        traffic=_traffic(view, rollout_state),
        general=general,
        port_routes=port_routes,
        resilience=whole,
        port_resilience=tuple(per_port.items()),
        ports=tuple(_port(port, whole, per_port.get(int(port.port))) for port in view.spec.ports),
    )


def _rules(view: ServiceView, model: MeshModel) -> tuple[ResolvedRule, ...]:
    out: list[ResolvedRule] = []
    for policy in sorted(view.policies, key=lambda p: p.ref):
        namespace = policy.model.metadata.namespace
        mode = policy.model.spec.mode
        for index, rule in enumerate(policy.model.spec.rules):
            sources = tuple(resolve_source(s, namespace, model) for s in rule.from_)
            ports = tuple(target_port(view, port) for port in rule.to.ports)
            out.append(ResolvedRule(policy, index, rule, mode, sources, ports))
    return tuple(out)


def _traffic(view: ServiceView, rollout_state: Mapping[str, int]) -> TrafficRecord:
    rollout = current_rollout(view)
    if rollout is None:
        return TrafficRecord(None, (), (), None)
    spec = rollout.model.spec
    weights = live_weights(spec, rollout_state.get(rollout_state_key(rollout)))
    return TrafficRecord(rollout, tuple(weights), tuple(spec.match), spec.mirror)


def _route_settings(
    spec: ResilienceSpec | None, fallback: RouteSettings | None = None
) -> RouteSettings:
    timeout = spec.timeout if spec is not None else None
    retries = spec.retries if spec is not None else None
    if fallback is not None:
        timeout = timeout if timeout is not None else fallback.timeout
        retries = retries if retries is not None else fallback.retries
    return RouteSettings(timeout, retries)


def _port(port: Port, whole: ResilienceSpec | None, own: ResilienceSpec | None) -> PortRecord:
    number = int(port.port)
    protocol = str(port.protocol)
    settings = _route_settings(own, _route_settings(whole))
    retries: RetryPolicy | None = None
    if protocol != "tcp":
        declared = settings.retries
        retries = (
            RetryPolicy(
                declared.attempts,
                declared.per_try_timeout,
                tuple(declared.retry_on),
                declared=True,
            )
            if declared is not None
            else RetryPolicy(ISTIO_DEFAULT_ATTEMPTS, None, ISTIO_DEFAULT_RETRY_ON, declared=False)
        )
    cluster = own if own is not None else whole
    return PortRecord(
        port=number,
        name=str(port.name),
        protocol=protocol,
        target_port=int(port.container_port),
        timeout=settings.timeout if protocol != "tcp" else None,
        retries=retries,
        circuit_breaker=cluster.circuit_breaker if cluster is not None else None,
        load_balancer=cluster.load_balancer if cluster is not None else None,
    )
