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
from typing import Any

from compiler.artifacts import canonical_json
from compiler.kinds.access_policy.model import AccessPolicyDocument, Rule, Source
from compiler.lower.istio.common import (
    ENVOY_METRICS_PORTS,
    K8S_NETWORKING,
    LowerContext,
    Obj,
    new_object,
    resolve_service,
)
from compiler.model.mesh import ServiceView
from compiler.model.traffic import target_port
from compiler.validate import Intent

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
ANY_POD: Obj = {"namespaceSelector": {}}


def service_network_policy(ctx: LowerContext, view: ServiceView) -> Obj | None:
    """The service's NetworkPolicy; None when disabled or no enforced policy restricts it."""
    if not ctx.model.settings.network_policy.enabled:
        return None
    enforced = sorted(
        (p for p in view.policies if p.model.spec.mode == "enforce"), key=lambda p: p.ref
    )
    return network_policy(ctx, view, enforced) if enforced else None


def _namespace(name: str) -> Obj:
    return {"matchLabels": {NAMESPACE_LABEL: name}}


def _pods(selector: Mapping[str, str], namespace: str) -> Obj:
    return {
        "podSelector": {"matchLabels": dict(sorted(selector.items()))},
        "namespaceSelector": _namespace(namespace),
    }


def peers(ctx: LowerContext, source: Source, namespace: str) -> list[Obj]:
    """The pods a rule's source stands for (empty when it resolves to none)."""
    if source.ingress_gateway:
        gateway = ctx.model.settings.ingress_gateway
        return [_pods(gateway.selector, gateway.namespace)]
    if source.is_wildcard:
        return [dict(ANY_POD)]
    if source.service:
        view = resolve_service(ctx, source.service, namespace)
        return [_pods(view.selector, view.key.namespace)] if view is not None else []
    if source.namespace:
        return [{"namespaceSelector": _namespace(source.namespace)}]
    return identity_peers(ctx, source.identity or "")


def identity_peers(ctx: LowerContext, identity: str) -> list[Obj]:
    """Pods cannot be selected by service account: use the services running as it, else
    the identity's whole namespace (wider at L3; the AuthorizationPolicy stays exact)."""
    namespace, account = identity_namespace_account(identity)
    found = [
        _pods(view.selector, view.key.namespace)
        for key, view in sorted(ctx.model.services.items())
        if key.namespace == namespace and view.service_account == account
    ]
    return found or [{"namespaceSelector": _namespace(namespace)}]


def identity_namespace_account(identity: str) -> tuple[str, str]:
    """`ns/sa` or `spiffe://<trust domain>/ns/<ns>/sa/<sa>` as (namespace, account)."""
    parts = identity.split("://", 1)[-1].split("/")
    return (parts[-3], parts[-1]) if len(parts) >= 4 else (parts[0], parts[-1])


def _keyed_peers(
    ctx: LowerContext,
    source: Source,
    namespace: str,
    resolved: dict[tuple[Any, ...], list[tuple[str, Obj]]],
) -> list[tuple[str, Obj]]:
    """`peers` with their canonical JSON (the grouping and sort key), memoised per
    NetworkPolicy: one caller usually appears in many rules."""
    key = (source.service, source.namespace, source.identity, source.ingress_gateway, namespace)
    hit = resolved.get(key)
    if hit is None:
        hit = [(canonical_json(peer), peer) for peer in peers(ctx, source, namespace)]
        resolved[key] = hit
    return hit


def _narrowest(peers_of: list[Obj]) -> list[Obj]:
    """Any pod in any namespace subsumes the rest: keep the list to what it means."""
    return [ANY_POD] if ANY_POD in peers_of else peers_of


def rule_ports(view: ServiceView, rule: Rule) -> set[int]:
    if not rule.to.ports:
        return {int(p.container_port) for p in view.spec.ports}
    return {p for p in (target_port(view, port) for port in rule.to.ports) if p is not None}


def network_policy(
    ctx: LowerContext, view: ServiceView, enforced: list[Intent[AccessPolicyDocument]]
) -> Obj:
    by_peer: dict[str, tuple[Obj, set[int]]] = {}
    resolved: dict[tuple[Any, ...], list[tuple[str, Obj]]] = {}
    for policy in enforced:
        namespace = policy.model.metadata.namespace
        for rule in policy.model.spec.rules:
            if rule.action != "allow":
                continue
            ports = rule_ports(view, rule)
            for source in rule.from_:
                for text, peer in _keyed_peers(ctx, source, namespace, resolved):
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
        source=enforced[0].ref,
    )
    obj["spec"] = {
        "podSelector": {"matchLabels": dict(sorted(view.selector.items()))},
        "policyTypes": ["Ingress"],
        "ingress": ingress,
    }
    return obj
