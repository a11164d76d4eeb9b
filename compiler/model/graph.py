"""The two access graphs.

The *allowed* graph is what servers permit (the security view: every allow rule, per
source); the *effective* graph is what can actually happen — a client's declared `calls:`
intersected with what the server allows at runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from compiler.kinds.access_policy.model import AccessPolicyDocument, Operation, Rule, Source
from compiler.model.access import PeerKind, resolve_source
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.validate import Intent

Verdict = Literal["allowed", "shadow", "default-allow", "default-deny", "no-rule", "denied"]


@dataclass(frozen=True, order=True, slots=True)
class Peer:
    """A caller as a rule names it."""

    kind: PeerKind
    value: str

    def __str__(self) -> str:
        if self.kind == "service":
            return self.value
        if self.kind == "any":
            return "* (any mesh identity)"
        if self.kind == "ingress":
            return self.value  # `ingress-gateway`, or `ingress-gateway:<name>` for one
        return f"{self.kind}:{self.value}"

    @classmethod
    def of(cls, source: Source, namespace: str, model: MeshModel) -> Peer:
        resolved = resolve_source(source, namespace, model)
        return cls(resolved.peer, resolved.label)


def describe_operation(op: Operation) -> str:
    parts = []
    if op.methods:
        parts.append(",".join(op.methods))
    if op.paths:
        parts.append(",".join(op.paths))
    if op.ports:
        parts.append("port " + ",".join(str(p) for p in op.ports))
    return " ".join(parts) or "*"


@dataclass(frozen=True, slots=True)
class Edge:
    source: Peer
    server: ServiceKey
    operation: str
    action: Literal["allow", "deny"]
    mode: Literal["enforce", "shadow", "default"]
    origin: str

    def __str__(self) -> str:
        arrow = "→" if self.action == "allow" else "⊣"
        suffix = "" if self.mode == "enforce" else f" ({self.mode})"
        return f"{self.source} {arrow} {self.server} {self.operation}{suffix}"

    def sort_key(self) -> tuple[str, str, str, str, str]:
        return (str(self.server), str(self.source), self.operation, self.action, self.mode)


def allowed_edges(model: MeshModel) -> list[Edge]:
    """Every allow (and deny) a server states, plus what defaults open."""
    edges: set[Edge] = set()
    for view in model.services.values():
        edges.update(server_edges(view, model))
    return sorted(edges, key=Edge.sort_key)


def server_edges(view: ServiceView, model: MeshModel) -> set[Edge]:
    """The edges into one server: its rules per source, or what shadow mode or the mesh
    default opens. A caller-only service (no ports) has none: nothing can call it."""
    edges: set[Edge] = set()
    if view.client_only:
        return edges
    enforced = [p for p in view.policies if p.model.spec.mode == "enforce"]
    if not enforced and (view.policies or model.settings.default_action == "allow"):
        mode: Literal["shadow", "default"] = "shadow" if view.policies else "default"
        edges.add(Edge(Peer("any", "*"), view.key, "*", "allow", mode, ""))
    for policy in view.policies:
        for rule in policy.model.spec.rules:
            for source in rule.from_:
                edges.add(
                    Edge(
                        Peer.of(source, policy.model.metadata.namespace, model),
                        view.key,
                        describe_operation(rule.to),
                        rule.action,
                        policy.model.spec.mode,
                        policy.ref,
                    )
                )
    return edges


@dataclass(frozen=True, slots=True)
class CallDecision:
    """What happens when `client` calls `server` (a declared call)."""

    client: ServiceKey
    server: ServiceKey
    allowed: bool
    reason: str
    operations: tuple[str, ...]
    verdict: Verdict = "allowed"
    """Why, as a tag: tools that report a denial say which kind it was."""


Placed = tuple[Intent[AccessPolicyDocument], Rule]

RuleIndex = tuple[
    Mapping[str, tuple[int, ...]],
    Mapping[str, tuple[int, ...]],
    tuple[int, ...],
    tuple[Placed, ...],
]
"""A server's enforced rules indexed by whom their sources admit: by SPIFFE ID, by
namespace, and those admitting anyone (positions into the last item)."""


def rule_index(server: ServiceView, model: MeshModel) -> RuleIndex:
    """The server's enforced rules by source, so deciding a call costs the rules that
    name the caller, not every rule of the server (a hub with one rule per caller)."""
    by_id: dict[str, list[int]] = {}
    by_namespace: dict[str, list[int]] = {}
    anyone: list[int] = []
    placed: list[Placed] = []
    for policy in server.policies:
        if policy.model.spec.mode != "enforce":
            continue
        namespace = policy.model.metadata.namespace
        for rule in policy.model.spec.rules:
            position = len(placed)
            placed.append((policy, rule))
            for source in rule.from_:
                for principal in resolve_source(source, namespace, model).principals:
                    if principal.kind == "any":
                        anyone.append(position)
                    elif principal.kind == "namespace":
                        by_namespace.setdefault(principal.value, []).append(position)
                    else:
                        by_id.setdefault(principal.value, []).append(position)
    return (
        {spiffe: tuple(found) for spiffe, found in by_id.items()},
        {namespace: tuple(found) for namespace, found in by_namespace.items()},
        tuple(anyone),
        tuple(placed),
    )


def server_rule_index(model: MeshModel, key: ServiceKey) -> RuleIndex:
    """`rule_index` of the declared service `key` (for `MeshModel.derived`)."""
    return rule_index(model.services[key], model)


def matching_rules(client: ServiceView, index: RuleIndex) -> list[Placed]:
    """The enforced rules (in policy order) with a source admitting `client`."""
    by_id, by_namespace, anyone, placed = index
    positions = {*anyone}
    positions.update(by_id.get(client.spiffe_id, ()))
    positions.update(by_namespace.get(client.key.namespace, ()))
    return [placed[position] for position in sorted(positions)]


def decide_call(
    client: ServiceView, server: ServiceView, model: MeshModel, index: RuleIndex | None = None
) -> CallDecision:
    """What happens when `client` calls `server`; `index` is `rule_index(server, model)`
    when the caller keeps it for several calls into one server."""
    enforced = [p for p in server.policies if p.model.spec.mode == "enforce"]
    if not enforced:
        if server.policies:
            return CallDecision(
                client.key, server.key, True, "shadow mode (allow-all)", ("*",), "shadow"
            )
        if model.settings.default_action == "allow":
            return CallDecision(
                client.key, server.key, True, "default allow", ("*",), "default-allow"
            )
        return CallDecision(
            client.key,
            server.key,
            False,
            f"{server.key} has no AccessPolicy and the mesh default is deny",
            (),
            "default-deny",
        )
    if index is None:
        index = model.derived(server_rule_index, server.key)
    rules = matching_rules(client, index)
    for policy, rule in rules:
        if rule.action == "deny" and rule.to.is_any and not rule.headers:
            number = next(i for i, r in enumerate(policy.model.spec.rules) if r is rule) + 1
            return CallDecision(
                client.key,
                server.key,
                False,
                f"deny rule {number} of {policy.ref} matches every request from {client.key}",
                (),
                "denied",
            )
    allows = sorted({describe_operation(r.to) for _, r in rules if r.action == "allow"})
    if not allows:
        return CallDecision(
            client.key,
            server.key,
            False,
            f"no rule of {server.key}'s AccessPolicy allows {client.key}",
            (),
            "no-rule",
        )
    return CallDecision(client.key, server.key, True, "allowed", tuple(allows))


def effective_edges(model: MeshModel) -> list[CallDecision]:
    """Every declared call with its runtime decision (allowed ones form the effective graph)."""
    decisions = []
    indexes: dict[ServiceKey, RuleIndex] = {}
    for client in sorted(model.services.values(), key=lambda v: v.key):
        for target in client.calls:
            server = model.services.get(target)
            if server is None:
                continue
            index = indexes.get(target)
            if index is None:
                index = indexes[target] = rule_index(server, model)
            decisions.append(decide_call(client, server, model, index))
    return decisions
