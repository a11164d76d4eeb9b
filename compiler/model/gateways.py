"""The mesh's ingress gateways as lint and backends see them: which namespaces meshc puts
under its zero-trust allow-nothing, which gateways may call a service, on which ports,
and whether a gateway can carry a Rollout's split.

Facts only; lint rules report what these find, backends emit from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from compiler.kinds.access_policy.model import Rule
from compiler.kinds.mesh.model import ResolvedGateway
from compiler.model.access import gateways_named
from compiler.model.mesh import MeshModel, ServiceView

SplitBinding = Literal["virtual-service", "http-route"]


def deny_namespaces(model: MeshModel) -> frozenset[str]:
    """The namespaces meshc's `meshc-allow-nothing` policy covers (default action deny:
    every namespace with services)."""
    if model.settings.default_action != "deny":
        return frozenset()
    return frozenset(model.namespaces)


def under_default_deny(gateway: ResolvedGateway, model: MeshModel) -> bool:
    """Whether meshc's allow-nothing applies to the gateway's pods: one in its namespace,
    or one in the root namespace (Istio applies root-namespace policies mesh-wide)."""
    denied = deny_namespaces(model)
    return gateway.namespace in denied or model.settings.root_namespace in denied


def gateways_calling(view: ServiceView, model: MeshModel) -> tuple[ResolvedGateway, ...]:
    """The gateways an enforced allow rule of the service names, in the Mesh's order."""
    named = {gateway.name for _, found in _gateway_allows(view, model) for gateway in found}
    return tuple(g for g in model.settings.ingress_gateways if g.name in named)


def gateway_http_ports(view: ServiceView, gateway: ResolvedGateway, model: MeshModel) -> list[int]:
    """The service's HTTP ports (service port numbers) the gateway may call, sorted: those
    its enforced allow rules naming the gateway list, or every HTTP port."""
    by_name = {p.name: int(p.port) for p in view.spec.ports if p.protocol != "tcp"}
    http = set(by_name.values())
    found: set[int] = set()
    for rule, gateways in _gateway_allows(view, model):
        if gateway in gateways:
            written = rule.to.ports
            found.update(http & {_number(p, by_name) for p in written} if written else http)
    return sorted(found)


def _gateway_allows(
    view: ServiceView, model: MeshModel
) -> Iterator[tuple[Rule, tuple[ResolvedGateway, ...]]]:
    """Each enforced allow rule of the service naming gateways, with the gateways named."""
    for policy in view.policies:
        if policy.model.spec.mode != "enforce":
            continue
        for rule in policy.model.spec.rules:
            if rule.action != "allow":
                continue
            named = tuple(
                gateway
                for source in rule.from_
                if source.ingress_gateway
                for gateway in gateways_named(source.ingress_gateway, model.settings)
            )
            if named:
                yield rule, named


def _number(port: int | str, by_name: dict[str, int]) -> int:
    """A `to.ports` entry as a service port number (0: names no port)."""
    if isinstance(port, int):
        return port
    return int(port) if port.isdigit() else by_name.get(port, 0)


def split_binding(gateway: ResolvedGateway) -> SplitBinding | None:
    """How meshc carries a Rollout's split to the gateway's traffic: a VirtualService bound
    to the classic gateway's `Gateway` resource (it needs the resource and the hosts the
    routes match), an HTTPRoute attached to the Gateway API `Gateway`; None: it cannot."""
    if gateway.api == "gateway-api":
        return "http-route"
    if gateway.gateway is not None and gateway.hosts:
        return "virtual-service"
    return None


def version_service_name(view: ServiceView, version: str) -> str:
    """The per-version Kubernetes Service an HTTPRoute's weighted backendRefs name."""
    return f"{view.key.name}-{version}"


def gateway_route_name(view: ServiceView, gateway: ResolvedGateway) -> str:
    """The name of the route meshc binds to a gateway for the service's split."""
    return f"{view.key.name}-via-{gateway.name}"
