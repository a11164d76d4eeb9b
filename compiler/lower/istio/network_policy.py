"""AccessPolicy → Kubernetes NetworkPolicy: L3/L4 defense in depth.

The service's pods accept its target ports only from the pods of callers an enforced
allow rule names (pod selector + namespace selector), from the ingress gateway where it
is allowed, and from the monitoring namespace on Envoy's metrics ports — so access still
holds if a sidecar is bypassed. Deny rules and header/path conditions are L7 and stay
with the AuthorizationPolicy. Shadow-only services get none: their live decision is
"any authenticated caller", and a NetworkPolicy must not be stricter than that.
"""

from __future__ import annotations

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
from compiler.model.mesh import ServiceView
from compiler.model.records import ResolvedRule, ServiceRecord

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
ANY_POD: Obj = {"namespaceSelector": {}}


def service_network_policy(ctx: LowerContext, record: ServiceRecord) -> Obj | None:
    """The service's NetworkPolicy; None when disabled or no enforced policy restricts it."""
    if not ctx.model.settings.network_policy.enabled:
        return None
    enforced = [rule for rule in record.rules if rule.mode == "enforce"]
    return network_policy(ctx, record, enforced) if enforced else None


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
        source=min(rule.policy.ref for rule in enforced),
    )
    obj["spec"] = {
        "podSelector": {"matchLabels": dict(sorted(view.selector.items()))},
        "policyTypes": ["Ingress"],
        "ingress": ingress,
    }
    return obj
