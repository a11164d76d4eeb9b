"""Risk flags: the parts of a change a reviewer must not miss.

Flags are derived from the meaning diff only, so they hold for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.plan.meaning import AccessEdge, FieldChange, MeaningDiff, peer_label, service_label

ACCESS_WIDENED = "access-widened"
WILDCARD_IDENTITY = "wildcard-identity"
NAMESPACE_OPENED = "namespace-opened"
MTLS_WEAKENED = "mtls-weakened"
DEFAULT_DENY_REMOVED = "default-deny-removed"
NETWORK_POLICY_DISABLED = "network-policy-disabled"
TRUST_ANCHOR_REMOVED = "trust-anchor-removed"

RISK_CODES = (
    ACCESS_WIDENED,
    WILDCARD_IDENTITY,
    NAMESPACE_OPENED,
    MTLS_WEAKENED,
    DEFAULT_DENY_REMOVED,
    NETWORK_POLICY_DISABLED,
    TRUST_ANCHOR_REMOVED,
)


@dataclass(frozen=True, order=True, slots=True)
class RiskFlag:
    code: str
    subject: str
    message: str


def risk_flags(diff: MeaningDiff) -> list[RiskFlag]:
    qualify = diff.qualify
    flags: list[RiskFlag] = []
    for edge in diff.allowed_added:
        if edge.action == "allow":
            flags.extend(_edge_flags(edge, qualify=qualify))
    for edge in diff.allowed_removed:
        if edge.action == "deny" and edge.mode == "enforce":
            flags.append(
                RiskFlag(
                    ACCESS_WIDENED,
                    edge.server,
                    f"deny rule removed: {edge.text(qualify=qualify)} no longer applies",
                )
            )
    flags.extend(_opened_namespaces(diff))
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
    flags = [RiskFlag(ACCESS_WIDENED, edge.server, f"new allowed access: {text}")]
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
    if change.field == "networkPolicy.enabled" and change.after == "false":
        return [
            RiskFlag(
                NETWORK_POLICY_DISABLED,
                "mesh",
                "NetworkPolicy generation turned off: no L3/L4 defense if a sidecar is bypassed",
            )
        ]
    return []
