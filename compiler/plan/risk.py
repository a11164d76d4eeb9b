"""Risk flags: the parts of a change a reviewer must not miss.

Flags are derived from the meaning diff only, so they hold for every backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from compiler.kinds.common import duration_ms
from compiler.kinds.resilience.chains import retries_failed_answer
from compiler.plan.meaning import AccessEdge, FieldChange, MeaningDiff, peer_label, service_label

ACCESS_WIDENED = "access-widened"
ACCESS_NARROWED = "access-narrowed"
WILDCARD_IDENTITY = "wildcard-identity"
NAMESPACE_OPENED = "namespace-opened"
MTLS_WEAKENED = "mtls-weakened"
DEFAULT_DENY_REMOVED = "default-deny-removed"
NETWORK_POLICY_DISABLED = "network-policy-disabled"
TRUST_ANCHOR_REMOVED = "trust-anchor-removed"
TRAFFIC_SHIFTED = "traffic-shifted"
RETRIES_WIDENED = "retries-widened"
RESILIENCE_LOOSENED = "resilience-loosened"
EGRESS_ADDED = "egress-added"

TRAFFIC_STEP = 25
"""Percentage points of traffic one change may move to a version before it is flagged:
a canary step larger than this skips the observation a progressive rollout is for."""

RISK_CODES = (
    ACCESS_WIDENED,
    ACCESS_NARROWED,
    WILDCARD_IDENTITY,
    NAMESPACE_OPENED,
    MTLS_WEAKENED,
    DEFAULT_DENY_REMOVED,
    NETWORK_POLICY_DISABLED,
    TRUST_ANCHOR_REMOVED,
    TRAFFIC_SHIFTED,
    RETRIES_WIDENED,
    RESILIENCE_LOOSENED,
    EGRESS_ADDED,
)


@dataclass(frozen=True, order=True, slots=True)
class RiskFlag:
    code: str
    subject: str
    message: str
    severity: str = "warning"
    """`warning`, or `info` for what a reviewer should know but need not stop at (access
    lost by a caller that does not declare the call)."""


def risk_flags(diff: MeaningDiff) -> list[RiskFlag]:
    qualify = diff.qualify
    flags: list[RiskFlag] = []
    for edge in diff.allowed_added:
        if edge.action == "allow":
            flags.extend(_edge_flags(edge, qualify=qualify))
    flags.extend(_access_flags(diff))
    flags.extend(_opened_namespaces(diff))
    flags.extend(_traffic_flags(diff))
    flags.extend(_egress_flags(diff))
    for change in diff.resilience:
        flags.extend(_resilience_flags(change, diff))
    for change in diff.mesh:
        flags.extend(_mesh_flags(change))
    for change in diff.trust:
        if change.field.startswith("anchor ") and change.before is not None:
            name = change.field.removeprefix("anchor ")
            what = "removed" if change.after is None else "replaced"
            flags.append(
                RiskFlag(
                    TRUST_ANCHOR_REMOVED,
                    f"ca/{name}",
                    f"trust anchor {name} ({change.before}) {what}: workload certificates that "
                    "chain to it stop being trusted; pass --ca-status to check live certificates",
                )
            )
    return sorted(set(flags))


def _edge_flags(edge: AccessEdge, *, qualify: bool) -> list[RiskFlag]:
    text = edge.text(qualify=qualify)
    flags = []
    if edge.source_kind == "any" and edge.mode == "enforce":
        flags.append(
            RiskFlag(
                WILDCARD_IDENTITY,
                edge.server,
                f"{service_label(edge.server, qualify=qualify)} now admits any mesh identity: "
                + text,
            )
        )
    if edge.source_kind == "namespace":
        server_ns = edge.server.split("/", 1)[0]
        where = "its own namespace" if edge.source == server_ns else "another namespace"
        flags.append(
            RiskFlag(
                NAMESPACE_OPENED,
                edge.server,
                f"{edge.server} is opened to every workload of {where}, {edge.source}: {text}",
            )
        )
    return flags


def _opened_namespaces(diff: MeaningDiff) -> list[RiskFlag]:
    """A service in one namespace may now be called from a namespace that could not before."""

    def pairs(edges: tuple[AccessEdge, ...] | frozenset[AccessEdge]) -> set[tuple[str, str]]:
        found = set()
        for edge in edges:
            if edge.action == "allow" and edge.source_kind == "service":
                source_ns = edge.source.split("/", 1)[0]
                server_ns = edge.server.split("/", 1)[0]
                if source_ns != server_ns:
                    found.add((source_ns, server_ns))
        return found

    added = pairs(diff.allowed_added) - pairs(diff.allowed_removed)
    return [
        RiskFlag(
            NAMESPACE_OPENED,
            f"{server_ns}",
            f"namespace {server_ns} is opened to namespace {source_ns}: "
            + "; ".join(
                f"{peer_label(e.source, e.source_kind, qualify=True)} → {e.server} {e.operation}"
                for e in diff.allowed_added
                if e.source_kind == "service"
                and e.source.startswith(source_ns + "/")
                and e.server.startswith(server_ns + "/")
            ),
        )
        for source_ns, server_ns in sorted(added)
    ]


def _mesh_flags(change: FieldChange) -> list[RiskFlag]:
    if change.field == "mtls.mode" and change.after == "permissive":
        return [
            RiskFlag(
                MTLS_WEAKENED,
                "mesh",
                f"mesh-wide mTLS {change.before or 'strict'} → permissive: plaintext is accepted",
            )
        ]
    if (
        change.field == "mtls.until"
        and change.after is not None
        and (change.before is None or change.after > change.before)
    ):
        return [
            RiskFlag(
                MTLS_WEAKENED,
                "mesh",
                f"permissive mTLS extended: until {change.before or '(unset)'} → {change.after}",
            )
        ]
    if change.field.startswith("mtls.exceptions[") and change.after is not None:
        service = change.field[len("mtls.exceptions[") : -1]
        verb = "new" if change.before is None else "changed"
        return [
            RiskFlag(
                MTLS_WEAKENED,
                service,
                f"{verb} permissive mTLS exception for {service}: {change.after}",
            )
        ]
    if change.field == "defaultAction" and change.before == "deny" and change.after == "allow":
        return [
            RiskFlag(
                DEFAULT_DENY_REMOVED,
                "mesh",
                "default action deny → allow: services without an AccessPolicy accept every caller",
            )
        ]
    if change.field == "networkPolicy.defaultDeny" and change.before == "true":
        return [
            RiskFlag(
                NETWORK_POLICY_DISABLED,
                "mesh",
                "network default deny turned off: pods meshc does not know accept and open "
                "connections again, and callers' egress is no longer limited to their calls",
            )
        ]
    if change.field == "outboundTrafficPolicy" and change.before == "REGISTRY_ONLY":
        after = change.after or "(unset: the mesh config decides, ALLOW_ANY by default)"
        return [
            RiskFlag(
                EGRESS_ADDED,
                "mesh",
                f"outboundTrafficPolicy REGISTRY_ONLY → {after}: proxies pass hosts no "
                "External declares through",
            )
        ]
    if change.field == "networkPolicy.enabled" and change.after == "false":
        return [
            RiskFlag(
                NETWORK_POLICY_DISABLED,
                "mesh",
                "NetworkPolicy generation turned off: no L3/L4 defense if a sidecar is bypassed",
            )
        ]
    return []


def _access_flags(diff: MeaningDiff) -> list[RiskFlag]:
    """One flag per caller, server port and direction whose allowed requests changed:
    widened when some request is newly allowed, narrowed (information) when some is lost,
    a warning when the caller declares the call (it will break)."""
    flags = []
    for change in diff.access:
        if change.gained:
            flags.append(RiskFlag(ACCESS_WIDENED, change.server, change.text()))
            continue
        breaks = change.server in diff.declared.get(change.caller, frozenset())
        message = change.text() + (" (a declared call: it will break)" if breaks else "")
        severity = "warning" if breaks else "info"
        flags.append(RiskFlag(ACCESS_NARROWED, change.server, message, severity))
    return flags


def _egress_flags(diff: MeaningDiff) -> list[RiskFlag]:
    """New traffic leaving the mesh: one flag per caller and External it gained a host or
    port of (an External newly called, or a new host or port on one it calls)."""
    gained: dict[tuple[str, str], list[str]] = {}
    for call in diff.egress_added:
        gained.setdefault((call.client, call.external), []).append(call.destination)
    return [
        RiskFlag(
            EGRESS_ADDED,
            client,
            f"{service_label(client, qualify=diff.qualify)} may now call outside the mesh: "
            f"{service_label(external, qualify=diff.qualify)} {', '.join(sorted(destinations))}",
        )
        for (client, external), destinations in sorted(gained.items())
    ]


def _traffic_flags(diff: MeaningDiff) -> list[RiskFlag]:
    """A version given more than `TRAFFIC_STEP` points of a service's traffic at once."""
    flags = []
    for change in diff.traffic:
        before = change.before.shares if change.before is not None else None
        after = change.after.shares if change.after is not None else None
        if before is None or after is None:
            continue
        old = dict(before)
        for version, share in after:
            moved = share - old.get(version, 0)
            if moved > TRAFFIC_STEP:
                name = service_label(change.service, qualify=diff.qualify)
                flags.append(
                    RiskFlag(
                        TRAFFIC_SHIFTED,
                        change.service,
                        f"{name}: {version} {old.get(version, 0)}% → {share}% in one change "
                        f"(more than {TRAFFIC_STEP} points at once)",
                    )
                )
    return flags


def _resilience_flags(change: FieldChange, diff: MeaningDiff) -> list[RiskFlag]:
    """Retries newly enabled or widened where non-idempotent requests arrive; timeouts and
    circuit-breaker limits removed or loosened."""
    service, field = change.subject, change.field.rsplit(": ", 1)[-1]
    name = service_label(service, qualify=diff.qualify)
    methods = diff.non_idempotent.get(service, ())
    if methods and _retries_widened(field, change.before, change.after):
        return [
            RiskFlag(
                RETRIES_WIDENED,
                service,
                f"{name}: {change.field} {change.before or '(unset)'} → {change.after} while "
                f"{', '.join(methods)} reach it: a retried request may repeat its side effect",
            )
        ]
    if _loosened(field, change.before, change.after):
        after = change.after if change.after is not None else "(removed)"
        return [
            RiskFlag(
                RESILIENCE_LOOSENED,
                service,
                f"{name}: {change.field} {change.before} → {after}",
            )
        ]
    return []


def _retries_widened(field: str, before: str | None, after: str | None) -> bool:
    if field == "retries.attempts" and after is not None:
        return int(after) > 0 and (before is None or int(after) > int(before))
    if field == "retries.retryOn" and after is not None:
        gained = set(_tokens(after)) - set(_tokens(before))
        return any(map(retries_failed_answer, gained))
    return False


def _tokens(value: str | None) -> list[str]:
    if value is None:
        return []
    loaded = json.loads(value) if value.startswith("[") else [value]
    return [str(token) for token in loaded]


def _loosened(field: str, before: str | None, after: str | None) -> bool:
    """A timeout or a circuit-breaker limit that was set and is now gone or larger."""
    if before is None:
        return False
    if field == "timeout":
        return after is None or duration_ms(after) > duration_ms(before)
    leaf = field.rsplit(".", 1)[-1]
    if field.startswith("circuitBreaker.") and leaf.startswith(("max", "consecutive")):
        return after is None or (_number(after) or 0) > (_number(before) or 0)
    return False


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
