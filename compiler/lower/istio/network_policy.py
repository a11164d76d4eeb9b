"""AccessPolicy → Kubernetes NetworkPolicy: L3/L4 defense in depth.

The service's pods accept its target ports only from the pods of callers an enforced
allow rule names (pod selector + namespace selector), from the ingress gateway where it
is allowed, and from the monitoring namespace on Envoy's metrics ports — so access still
holds if a sidecar is bypassed. Deny rules and header/path conditions are L7 and stay
with the AuthorizationPolicy. Shadow-only services get none: their live decision is
"any authenticated caller", and a NetworkPolicy must not be stricter than that.

Under network default deny (`networkPolicy.defaultDeny`, whose namespace-wide policy is
`namespace_network_policy`), every service gets one, with egress too: to the pods of the
services it calls and to its Externals' ports, so that a call the ingress side admits is
not dropped on the caller's side. A shadow-only service (or one with no policy under a
default allow) accepts any pod on its ports, as its AuthorizationPolicy does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from compiler.artifacts import canonical_json
from compiler.lower.istio.common import (
    ENVOY_METRICS_PORTS,
    K8S_NETWORKING,
    LowerContext,
    Obj,
    new_object,
)
from compiler.model.access import ResolvedSource
from compiler.model.egress import external_calls
from compiler.model.mesh import ExternalView, ServiceView
from compiler.model.records import ResolvedRule, ServiceRecord

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
ANY_POD: Obj = {"namespaceSelector": {}}


def service_network_policy(ctx: LowerContext, record: ServiceRecord) -> Obj | None:
    """The service's NetworkPolicy; None when disabled, or when no enforced policy
    restricts it and the namespace is not under network default deny."""
    settings = ctx.model.settings.network_policy
    if not settings.enabled:
        return None
    enforced = [rule for rule in record.rules if rule.mode == "enforce"]
    if not settings.default_deny:
        return network_policy(ctx, record, enforced) if enforced else None
    obj = network_policy(ctx, record, enforced)
    spec = obj["spec"]
    if not enforced and _open_to_all(ctx, record):
        ports = sorted({int(p.container_port) for p in record.view.spec.ports})
        spec["ingress"].insert(0, {"from": [dict(ANY_POD)], "ports": _tcp(ports)})
    spec["policyTypes"] = ["Ingress", "Egress"]
    spec["egress"] = call_egress(ctx, record.view)
    return obj


def _open_to_all(ctx: LowerContext, record: ServiceRecord) -> bool:
    """Whether the live decision admits every caller: shadow-only policies, or no policy
    under a default allow. Default deny at L3 must not be stricter than that."""
    policies = record.view.policies
    if policies:
        return all(policy.model.spec.mode == "shadow" for policy in policies)
    return ctx.model.settings.default_action == "allow"


def call_egress(ctx: LowerContext, view: ServiceView) -> list[Obj]:
    """Under default deny, what the service's pods may open: its declared calls (the
    callee's pods on their container ports) and its Externals (see `external_egress`)."""
    out: list[Obj] = []
    for callee in sorted(set(view.calls)):
        server = ctx.model.services.get(callee)
        if server is None or server.client_only:
            continue
        ports = sorted({int(p.container_port) for p in server.spec.ports})
        out.append({"to": [_pods(server.selector, callee.namespace)], "ports": _tcp(ports)})
    for external in sorted(external_calls(ctx.model, view), key=lambda e: e.key):
        out.append(external_egress(external))
    return out


def external_egress(external: ExternalView) -> Obj:
    """An External's ports to its addresses. NetworkPolicy cannot select by host name:
    without addresses the ports are opened to every IP (0.0.0.0/0 and ::/0), and the
    Sidecar (with REGISTRY_ONLY) is what keeps other hosts out."""
    spec = external.spec
    blocks = list(spec.addresses) or list(ANY_ADDRESS)
    ports = sorted({port.port for port in spec.ports})
    return {
        "to": [{"ipBlock": {"cidr": _cidr(block)}} for block in sorted(blocks)],
        "ports": _tcp(ports),
    }


ANY_ADDRESS = ("0.0.0.0/0", "::/0")


def _cidr(address: str) -> str:
    """An address as the CIDR NetworkPolicy wants (a single IP gets its full prefix)."""
    return str(ipaddress.ip_network(address, strict=False))


def _tcp(ports: list[int]) -> list[Obj]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


def _namespace(name: str) -> Obj:
    return {"matchLabels": {NAMESPACE_LABEL: name}}


def _pods(selector: Mapping[str, str], namespace: str) -> Obj:
    return {
        "podSelector": {"matchLabels": dict(sorted(selector.items()))},
        "namespaceSelector": _namespace(namespace),
    }


def peers(ctx: LowerContext, source: ResolvedSource) -> list[Obj]:
    """The pods a resolved rule source stands for (empty when it names no service)."""
    if source.peer == "ingress":
        return [_pods(dict(g.selector), g.namespace) for g in source.gateways]
    if source.peer == "any":
        return [dict(ANY_POD)]
    if source.peer == "service":
        view = ctx.model.services.get(source.service) if source.service else None
        return [_pods(view.selector, view.key.namespace)] if view is not None else []
    if source.peer == "namespace":
        return [{"namespaceSelector": _namespace(source.label)}]
    return identity_peers(ctx, source.label)


def identity_peers(ctx: LowerContext, spiffe: str) -> list[Obj]:
    """Pods cannot be selected by service account: use the services running as it, else
    the identity's whole namespace (wider at L3; the AuthorizationPolicy stays exact)."""
    namespace, account = identity_namespace_account(spiffe)
    running = ctx.model.identities.get(ctx.model.spiffe(namespace, account), ())
    found = []
    for key in sorted(running):
        view = ctx.model.services.get(key)
        if view is not None:
            found.append(_pods(view.selector, view.key.namespace))
    return found or [{"namespaceSelector": _namespace(namespace)}]


def identity_namespace_account(identity: str) -> tuple[str, str]:
    """`ns/sa` or `spiffe://<trust domain>/ns/<ns>/sa/<sa>` as (namespace, account)."""
    parts = identity.split("://", 1)[-1].split("/")
    return (parts[-3], parts[-1]) if len(parts) >= 4 else (parts[0], parts[-1])


def _keyed_peers(
    ctx: LowerContext, source: ResolvedSource, resolved: dict[ResolvedSource, list[tuple[str, Obj]]]
) -> list[tuple[str, Obj]]:
    """`peers` with their canonical JSON (the grouping and sort key), memoised per
    NetworkPolicy: one caller usually appears in many rules."""
    hit = resolved.get(source)
    if hit is None:
        hit = resolved[source] = [(canonical_json(peer), peer) for peer in peers(ctx, source)]
    return hit


def _narrowest(peers_of: list[Obj]) -> list[Obj]:
    """Any pod in any namespace subsumes the rest: keep the list to what it means."""
    return [ANY_POD] if ANY_POD in peers_of else peers_of


def rule_ports(view: ServiceView, rule: ResolvedRule) -> set[int]:
    if not rule.rule.to.ports:
        return {int(p.container_port) for p in view.spec.ports}
    return {port for port in rule.ports if port is not None}


def network_policy(ctx: LowerContext, record: ServiceRecord, enforced: list[ResolvedRule]) -> Obj:
    view = record.view
    by_peer: dict[str, tuple[Obj, set[int]]] = {}
    resolved: dict[ResolvedSource, list[tuple[str, Obj]]] = {}
    for rule in enforced:
        if rule.action != "allow":
            continue
        ports = rule_ports(view, rule)
        for source in rule.sources:
            for text, peer in _keyed_peers(ctx, source, resolved):
                entry = by_peer.setdefault(text, (peer, set()))
                entry[1].update(ports)
    by_ports: dict[tuple[int, ...], list[Obj]] = {}
    for _, (peer, ports) in sorted(by_peer.items()):
        if ports:
            by_ports.setdefault(tuple(sorted(ports)), []).append(peer)
    ingress = [
        {
            "from": _narrowest(peers_of),
            "ports": [{"port": port, "protocol": "TCP"} for port in ports],
        }
        for ports, peers_of in sorted(by_ports.items())
    ]
    ingress.append(
        {
            "from": [{"namespaceSelector": _namespace(ctx.model.settings.monitoring_namespace)}],
            "ports": [{"port": port, "protocol": "TCP"} for port in ENVOY_METRICS_PORTS],
        }
    )
    obj = new_object(
        ctx,
        api_version=K8S_NETWORKING,
        kind="NetworkPolicy",
        name=view.key.name,
        namespace=view.key.namespace,
        source=min(rule.policy.ref for rule in enforced) if enforced else view.intent.ref,
    )
    obj["spec"] = {
        "podSelector": {"matchLabels": dict(sorted(view.selector.items()))},
        "policyTypes": ["Ingress"],
        "ingress": ingress,
    }
    return obj
