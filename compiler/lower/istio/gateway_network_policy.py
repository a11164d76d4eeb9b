"""Ingress gateway → NetworkPolicy, under network default deny.

A gateway whose pods run in a namespace meshc puts under `meshc-default-deny` would accept
nothing and reach nothing. Each such gateway gets `meshc-gateway-<name>`: ingress on its
listener (container) ports from anywhere, or from its `sourceRanges`; egress to the pods
of every service whose AccessPolicy allows it (an `ingressGateway` source naming it, in
enforce or shadow mode), on the ports those rules name (all of the service's ports when
they name none). DNS and istiod come with the namespace's own policy.
"""

from __future__ import annotations

from compiler.kinds.access_policy.model import Source
from compiler.kinds.mesh.model import ResolvedGateway
from compiler.lower.istio.common import K8S_NETWORKING, LowerContext, Obj, new_object
from compiler.model.access import gateways_named
from compiler.model.mesh import ServiceView
from compiler.model.traffic import target_port

NAMESPACE_LABEL = "kubernetes.io/metadata.name"


def gateway_network_policies(ctx: LowerContext) -> list[Obj]:
    """One per ingress gateway in a namespace under network default deny."""
    if not ctx.model.settings.network_policy.default_deny:
        return []
    denied = set(ctx.model.namespaces)
    return [
        gateway_network_policy(ctx, gateway)
        for gateway in ctx.model.settings.ingress_gateways
        if gateway.namespace in denied
    ]


def gateway_network_policy(ctx: LowerContext, gateway: ResolvedGateway) -> Obj:
    obj = new_object(
        ctx,
        api_version=K8S_NETWORKING,
        kind="NetworkPolicy",
        name=f"meshc-gateway-{gateway.name}",
        namespace=gateway.namespace,
        source=ctx.mesh_source,
    )
    listener: Obj = {"ports": _tcp(gateway.ports)}
    if gateway.source_ranges:
        listener["from"] = [{"ipBlock": {"cidr": cidr}} for cidr in gateway.source_ranges]
    egress = []
    for view in sorted(ctx.model.services.values(), key=lambda v: v.key):
        ports = routed_ports(ctx, view, gateway)
        if ports:
            egress.append({"to": [_pods(view)], "ports": _tcp(ports)})
    obj["spec"] = {
        "podSelector": {"matchLabels": dict(gateway.selector)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [listener],
        "egress": egress,
    }
    return obj


def routed_ports(ctx: LowerContext, view: ServiceView, gateway: ResolvedGateway) -> list[int]:
    """The container ports of `view` that an allow rule naming `gateway` admits, sorted."""
    found: set[int] = set()
    every = {int(p.container_port) for p in view.spec.ports}
    for policy in view.policies:
        for rule in policy.model.spec.rules:
            if rule.action != "allow" or not _names(ctx, rule.from_, gateway):
                continue
            if not rule.to.ports:
                found |= every
            found.update(
                port for port in (target_port(view, p) for p in rule.to.ports) if port is not None
            )
    return sorted(found)


def _names(ctx: LowerContext, sources: list[Source], gateway: ResolvedGateway) -> bool:
    settings = ctx.model.settings
    return any(
        source.ingress_gateway and gateway in gateways_named(source.ingress_gateway, settings)
        for source in sources
    )


def _pods(view: ServiceView) -> Obj:
    return {
        "podSelector": {"matchLabels": dict(sorted(view.selector.items()))},
        "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: view.key.namespace}},
    }


def _tcp(ports: tuple[int, ...] | list[int]) -> list[Obj]:
    return [{"port": port, "protocol": "TCP"} for port in ports]
