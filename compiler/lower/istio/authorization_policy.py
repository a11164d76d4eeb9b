"""Mesh + AccessPolicy → AuthorizationPolicy.

- default action deny: an allow-nothing policy (`spec: {}`) in every namespace with services,
  and beside it, for each ingress gateway that policy reaches, the gateway's own ALLOW on
  its listener ports (from anywhere, or from its `sourceRanges`) so requests from outside
  still enter;
- each AccessPolicy: one object per Istio action it needs (ALLOW, DENY, and AUDIT for the
  rules marked `log: true`), selecting the service's workload;
- shadow mode (the live decision is as if the service had no AccessPolicy): while no
  enforced policy restricts the service, its workload allows every authenticated caller,
  and the policy's objects carry `istio.io/dry-run: "true"` so Istio only counts and logs
  what they would deny.

Where a rule names something that does not resolve, lowering fails closed: an allow loses
the unresolved source or port (never widening access), a deny drops the port restriction
(denying more). The model's lint rules report those references; this is the backstop.
"""

from __future__ import annotations

from typing import Any

from compiler.artifacts import canonical_json
from compiler.kinds.access_policy.model import AccessPolicyDocument, Operation
from compiler.kinds.mesh.model import ResolvedGateway
from compiler.lower.istio.common import (
    DRY_RUN,
    SECURITY,
    LowerContext,
    Obj,
    new_object,
)
from compiler.model.mesh import ServiceView
from compiler.model.records import ResolvedRule, ServiceRecord
from compiler.validate import Intent

ALLOW_NOTHING = "meshc-allow-nothing"
ACTIONS = {"allow": "ALLOW", "deny": "DENY"}
ACTION_ORDER = ("ALLOW", "DENY", "AUDIT")


def allow_nothing(ctx: LowerContext, namespace: str) -> Obj:
    """Zero trust: an ALLOW policy with no rules denies whatever no other policy allows."""
    obj = new_object(
        ctx,
        api_version=SECURITY,
        kind="AuthorizationPolicy",
        name=ALLOW_NOTHING,
        namespace=namespace,
        source=ctx.mesh_source,
    )
    obj["spec"] = {}
    return obj


def gateway_allow(ctx: LowerContext, gateway: ResolvedGateway) -> Obj | None:
    """The gateway pods accept requests on their listener ports: from anywhere, or from
    the declared source ranges; None when it has no listener port (lint refuses that).

    The ranges are `remoteIpBlocks`, the client address Envoy derives (the connection's
    peer, or the X-Forwarded-For / PROXY-protocol address of trusted front proxies),
    rather than `ipBlocks` (the connection's peer only, a load balancer's address once
    one sits in front)."""
    if not gateway.ports:
        return None
    obj = new_object(
        ctx,
        api_version=SECURITY,
        kind="AuthorizationPolicy",
        name=f"{GATEWAY_ALLOW_PREFIX}{gateway.name}",
        namespace=gateway.namespace,
        source=ctx.mesh_source,
    )
    rule: Obj = {}
    if gateway.source_ranges:
        rule["from"] = [{"source": {"remoteIpBlocks": list(gateway.source_ranges)}}]
    rule["to"] = [{"operation": {"ports": [str(port) for port in gateway.ports]}}]
    obj["spec"] = {
        "selector": {"matchLabels": dict(gateway.selector)},
        "action": "ALLOW",
        "rules": [rule],
    }
    return obj


GATEWAY_ALLOW_PREFIX = "meshc-gateway-"


def for_service(ctx: LowerContext, record: ServiceRecord) -> list[Obj]:
    view = record.view
    policies = sorted(view.policies, key=lambda p: p.ref)
    if not policies:
        return []
    out: list[Obj] = []
    enforced = [p for p in policies if p.model.spec.mode == "enforce"]
    if not enforced:
        out.append(shadow_allow_all(ctx, view, policies[0]))
    for policy in policies:
        rules = [rule for rule in record.rules if rule.policy is policy]
        out.extend(for_policy(ctx, view, policy, rules))
    if enforced and ctx.model.settings.default_action == "allow" and not _has_allow(enforced):
        out.append(workload_allow_nothing(ctx, view, enforced[0]))
    return out


def _has_allow(policies: list[Intent[AccessPolicyDocument]]) -> bool:
    return any(rule.action == "allow" for p in policies for rule in p.model.spec.rules)


def _selector(view: ServiceView) -> dict[str, Any]:
    return {"matchLabels": dict(sorted(view.selector.items()))}


def shadow_allow_all(
    ctx: LowerContext, view: ServiceView, policy: Intent[AccessPolicyDocument]
) -> Obj:
    """The live decision of a shadow-only service: any authenticated mesh caller."""
    rules: list[Obj] = [{"from": [{"source": {"principals": ["*"]}}]}]
    return _workload_allow(ctx, view, policy, suffix="shadow-allow-all", rules=rules)


def workload_allow_nothing(
    ctx: LowerContext, view: ServiceView, policy: Intent[AccessPolicyDocument]
) -> Obj:
    """With a default-allow mesh, a service whose policies only deny still denies the rest."""
    return _workload_allow(ctx, view, policy, suffix="allow-nothing", rules=None)


def _workload_allow(
    ctx: LowerContext,
    view: ServiceView,
    policy: Intent[AccessPolicyDocument],
    *,
    suffix: str,
    rules: list[Obj] | None,
) -> Obj:
    """An ALLOW policy `<service>-<suffix>` on the service's workload, traced to `policy`;
    without `rules` it allows nothing (Istio's allow-nothing form)."""
    obj = new_object(
        ctx,
        api_version=SECURITY,
        kind="AuthorizationPolicy",
        name=f"{view.key.name}-{suffix}",
        namespace=view.key.namespace,
        source=policy.ref,
    )
    body: Obj = {"selector": _selector(view), "action": "ALLOW"}
    if rules is not None:
        body["rules"] = rules
    obj["spec"] = body
    return obj


def policy_object_name(view: ServiceView, policy: Intent[AccessPolicyDocument], action: str) -> str:
    """`<policy>-<action>`; a policy from another namespace is prefixed `<ns>.` (no clash)."""
    meta = policy.model.metadata
    base = meta.name if meta.namespace == view.key.namespace else f"{meta.namespace}.{meta.name}"
    return f"{base}-{action.lower()}"


def for_policy(
    ctx: LowerContext,
    view: ServiceView,
    policy: Intent[AccessPolicyDocument],
    rules: list[ResolvedRule],
) -> list[Obj]:
    """The objects of one policy, from its `rules` (resolved, in order)."""
    spec = policy.model.spec
    buckets: dict[str, list[Obj]] = {action: [] for action in ACTION_ORDER}
    wanted: set[str] = set()
    for resolved in rules:
        action = ACTIONS[resolved.action]
        wanted.add(action)
        lowered = lower_rule(ctx, resolved)
        if lowered is None:
            continue
        buckets[action].append(lowered)
        if resolved.rule.log:
            wanted.add("AUDIT")
            buckets["AUDIT"].append(lowered)
    out = []
    for action in ACTION_ORDER:
        if action not in wanted or (action != "ALLOW" and not buckets[action]):
            continue
        obj = new_object(
            ctx,
            api_version=SECURITY,
            kind="AuthorizationPolicy",
            name=policy_object_name(view, policy, action),
            namespace=view.key.namespace,
            source=policy.ref,
        )
        if spec.mode == "shadow" and action != "AUDIT":
            obj["metadata"]["annotations"][DRY_RUN] = "true"
        body: Obj = {"selector": _selector(view), "action": action}
        if buckets[action]:
            body["rules"] = _dedupe(buckets[action])
        obj["spec"] = body
        out.append(obj)
    return out


def _dedupe(rules: list[Obj]) -> list[Obj]:
    """The rules without repeats, first seen first. Long lists go by canonical form (a hub
    with one rule per caller has thousands: comparing each with every kept one was
    quadratic); short ones, nearly all, by comparison (serialising each costs more)."""
    if len(rules) > _SHORT:
        by_form: dict[str, Obj] = {}
        for rule in rules:
            by_form.setdefault(canonical_json(rule), rule)
        return list(by_form.values())
    seen: list[Obj] = []
    for rule in rules:
        if rule not in seen:
            seen.append(rule)
    return seen


_SHORT = 32


def lower_rule(ctx: LowerContext, resolved: ResolvedRule) -> Obj | None:
    """One intent rule as one Istio rule; None when nothing of an allow rule resolves."""
    rule = resolved.rule
    allow = rule.action == "allow"
    sources = lower_sources(*resolved.live_sources(ctx.model.settings.trust_domain))
    if not sources:
        return None
    out: Obj = {"from": sources}
    operation = lower_operation(rule.to, resolved.live_ports(), allow=allow)
    if operation is None:
        return None
    if operation:
        out["to"] = [{"operation": operation}]
    if rule.headers:
        out["when"] = [
            {"key": f"request.headers[{name.lower()}]", "values": list(values)}
            for name, values in sorted(rule.headers.items())
        ]
    return out


def lower_sources(principals: frozenset[str], namespaces: frozenset[str]) -> list[Obj]:
    """A rule's live sources (`ResolvedRule.live_sources`) in Istio's form: principals are
    SPIFFE IDs without their scheme."""
    out: list[Obj] = []
    if principals:
        found = sorted(p.removeprefix("spiffe://") for p in principals)
        out.append({"source": {"principals": found}})
    if namespaces:
        out.append({"source": {"namespaces": sorted(namespaces)}})
    return out


def lower_operation(op: Operation, ports: tuple[int, ...] | None, *, allow: bool) -> Obj | None:
    """methods, paths and the rule's live ports (`ResolvedRule.live_ports`); None when an
    allow's ports all fail to resolve."""
    out: Obj = {}
    if op.methods:
        out["methods"] = sorted(set(op.methods))
    if op.paths:
        out["paths"] = sorted(set(op.paths))
    if ports is not None:
        if allow and not ports:
            return None
        out["ports"] = [str(p) for p in ports]
    return out
