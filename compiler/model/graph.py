"""The two access graphs of DESIGN.md §2.

The *allowed* graph is what servers permit (the security view: every allow rule, per
source); the *effective* graph is what can actually happen — a client's declared `calls:`
intersected with what the server allows at runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compiler.kinds.access_policy.model import AccessPolicyDocument, Operation, Rule, Source
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.validate import Intent

PeerKind = Literal["service", "namespace", "identity", "any", "ingress"]
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
            return "ingress-gateway"
        return f"{self.kind}:{self.value}"

    @classmethod
    def of(cls, source: Source, namespace: str, model: MeshModel) -> Peer:
        if source.ingress_gateway:
            return cls("ingress", "ingress-gateway")
        if "*" in (source.service, source.namespace, source.identity):
            return cls("any", "*")
        if source.service:
            return cls("service", str(ServiceKey.parse(source.service, namespace)))
        if source.namespace:
            return cls("namespace", source.namespace)
        return cls("identity", spiffe_of(source.identity or "", model))


def spiffe_of(identity: str, model: MeshModel) -> str:
    if identity.startswith("spiffe://"):
        return identity
    ns, account = identity.split("/", 1)
    return model.spiffe(ns, account)


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
    return sorted(edges, key=Edge.sort_key)


def peer_matches(source: Source, namespace: str, client: ServiceView, model: MeshModel) -> bool:
    """Whether a rule's source admits `client` at runtime (Istio matches principals).

    The same cases as `Peer.of`, without building a Peer: this runs for every rule of
    every server of every declared call."""
    if source.ingress_gateway:
        return False
    if "*" in (source.service, source.namespace, source.identity):
        return True
    if source.service:
        named = model.services.get(ServiceKey.parse(source.service, namespace))
        return named is not None and named.spiffe_id == client.spiffe_id
    if source.namespace:
        return client.key.namespace == source.namespace
    return client.spiffe_id == spiffe_of(source.identity or "", model)


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


Matcher = tuple[str, str]
"""A rule source resolved once: ("any" | "id" | "namespace" | "never", value)."""


@dataclass(frozen=True, slots=True)
class _Admits:
    """Whom one rule's sources admit, as sets: a client is checked in O(1) however many
    sources the rule names (a rule naming every service as a source made each declared
    call into its server a scan of thousands of sources)."""

    anyone: bool
    ids: frozenset[str]
    namespaces: frozenset[str]

    @classmethod
    def of(cls, matchers: tuple[Matcher, ...]) -> _Admits:
        return cls(
            any(kind == "any" for kind, _ in matchers),
            frozenset(value for kind, value in matchers if kind == "id"),
            frozenset(value for kind, value in matchers if kind == "namespace"),
        )

    def admit(self, spiffe: str, namespace: str) -> bool:
        return self.anyone or spiffe in self.ids or namespace in self.namespaces


def matching_rules(
    server: ServiceView, client: ServiceView, model: MeshModel
) -> list[tuple[Intent[AccessPolicyDocument], Rule]]:
    """The enforced rules of `server` with a source that admits `client` (`peer_matches`)."""
    spiffe = client.spiffe_id
    namespace = client.key.namespace
    return [
        (policy, rule)
        for policy, rule, admits in _enforced_matchers(server, model)
        if admits.admit(spiffe, namespace)
    ]


def _enforced_matchers(
    server: ServiceView, model: MeshModel
) -> list[tuple[Intent[AccessPolicyDocument], Rule, _Admits]]:
    """The server's enforced rules with their sources resolved, computed once per model
    (every declared call to the server is decided against the same rules)."""
    cached: list[tuple[Intent[AccessPolicyDocument], Rule, _Admits]] | None = server.match_index
    if cached is None:
        cached = []
        for policy in server.policies:
            if policy.model.spec.mode != "enforce":
                continue
            namespace = policy.model.metadata.namespace
            for rule in policy.model.spec.rules:
                matchers = tuple(_matcher(s, namespace, model) for s in rule.from_)
                cached.append((policy, rule, _Admits.of(matchers)))
        server.match_index = cached
    return cached


def _matcher(source: Source, namespace: str, model: MeshModel) -> Matcher:
    """What `peer_matches` compares a client against, for one source."""
    if source.ingress_gateway:
        return ("never", "")
    if "*" in (source.service, source.namespace, source.identity):
        return ("any", "")
    if source.service:
        named = model.services.get(ServiceKey.parse(source.service, namespace))
        return ("id", named.spiffe_id) if named is not None else ("never", "")
    if source.namespace:
        return ("namespace", source.namespace)
    return ("id", spiffe_of(source.identity or "", model))


def decide_call(client: ServiceView, server: ServiceView, model: MeshModel) -> CallDecision:
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
    rules = matching_rules(server, client, model)
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
    for client in sorted(model.services.values(), key=lambda v: v.key):
        for target in client.calls:
            server = model.services.get(target)
            if server is None:
                continue
            decisions.append(decide_call(client, server, model))
    return decisions
