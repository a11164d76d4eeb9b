"""The meaning diff: what a change does to access, traffic, resilience, mTLS and trust.

Each side of a plan is summarised once into a `Meaning` (plain, comparable values);
the diff between two summaries is what reviewers read instead of YAML.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from compiler.api import Compilation
from compiler.engine import Engine
from compiler.kinds.mesh.anchors import anchor_fingerprints
from compiler.model.access import GATEWAY_LABEL, gateway_spiffe
from compiler.model.egress import external_calls
from compiler.model.graph import decide_call, server_edges
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.model.methods import non_idempotent_methods
from compiler.model.queries import MeshReader, namespaces, ordered_keys
from compiler.model.records import ServiceRecord, service_record
from compiler.plan.requests import AccessChange, AccessShape, access_shape, changes


@dataclass(frozen=True, order=True, slots=True)
class AccessEdge:
    """One edge of the allowed graph: `source` may call `server` for `operation`."""

    server: str
    source: str
    source_kind: str
    operation: str
    action: str
    mode: str

    def text(self, *, qualify: bool) -> str:
        arrow = "→" if self.action == "allow" else "⊣ (deny)"
        suffix = "" if self.mode == "enforce" else f" ({self.mode})"
        return (
            f"{peer_label(self.source, self.source_kind, qualify=qualify)} {arrow} "
            f"{service_label(self.server, qualify=qualify)} {self.operation}{suffix}"
        )


@dataclass(frozen=True, order=True, slots=True)
class CallEdge:
    """One edge of the effective graph: a declared call the server allows."""

    server: str
    client: str
    operation: str

    def text(self, *, qualify: bool) -> str:
        return (
            f"{service_label(self.client, qualify=qualify)} → "
            f"{service_label(self.server, qualify=qualify)} {self.operation}"
        )


@dataclass(frozen=True, order=True, slots=True)
class ExternalCall:
    """One destination outside the mesh a service declares it calls: an External's host
    and port (`api.stripe.com:443/https`)."""

    client: str
    external: str
    destination: str

    def text(self, *, qualify: bool) -> str:
        return (
            f"{service_label(self.client, qualify=qualify)} → "
            f"{service_label(self.external, qualify=qualify)} {self.destination} (outside the mesh)"
        )


def service_label(key: str, *, qualify: bool) -> str:
    return key if qualify else key.split("/", 1)[-1]


def peer_label(value: str, kind: str, *, qualify: bool) -> str:
    if kind == "service":
        return service_label(value, qualify=qualify)
    if kind == "any":
        return "* (any mesh identity)"
    if kind == "ingress":
        return value
    return f"{kind}:{value}"


@dataclass(frozen=True, slots=True)
class Traffic:
    """How one service's traffic is shared: percentages per version, or unsplit."""

    shares: tuple[tuple[str, int], ...] | None
    match: tuple[str, ...] = ()
    mirror: str | None = None

    def shares_text(self) -> str:
        if self.shares is None:
            return "unsplit"
        return ", ".join(f"{version} {share}%" for version, share in self.shares if share)

    def text(self) -> str:
        main = self.shares_text()
        extras = [f"A/B {m}" for m in self.match]
        if self.mirror:
            extras.append(f"mirror {self.mirror}")
        return "; ".join([main, *extras])


@dataclass(frozen=True, slots=True, eq=False)
class Meaning:
    """One side's meaning, as comparable values."""

    traffic: Mapping[str, Traffic] = field(default_factory=dict)
    resilience: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    mesh: Mapping[str, str] = field(default_factory=dict)
    anchors: Mapping[str, str] = field(default_factory=dict)
    issuer: str | None = None
    namespaces: frozenset[str] = frozenset()
    non_idempotent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per service that any caller may send one to: the non-idempotent methods (POST,
    PATCH, CONNECT) that reach it, which retries may repeat."""
    access: Mapping[str, AccessShape] = field(default_factory=dict)
    """Per service, the requests its live policies allow."""
    declared: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per service, the services it declares it calls."""
    egress: Mapping[str, frozenset[ExternalCall]] = field(default_factory=dict)
    """Per service that calls an External, the outside hosts and ports it may reach."""
    callers: Mapping[str, str] = field(default_factory=dict)
    """SPIFFE ID → how a reviewer knows the caller (its services, the ingress gateway)."""
    parts: _Aggregate = field(default_factory=lambda: _Aggregate({}, {}), repr=False)
    """The edges by service: `allowed` and `effective` are their unions. Two summaries
    through one `MeaningCache` share most pieces, and `diff_meaning` skips those; the
    unions themselves are built only when read (a re-plan never does)."""

    @property
    def allowed(self) -> frozenset[AccessEdge]:
        """The allowed graph: every edge a server's policies (or defaults) state."""
        return self.parts.allowed()

    @property
    def effective(self) -> frozenset[CallEdge]:
        """The effective graph: every declared call its server allows."""
        return self.parts.effective()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Meaning):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable mappings inside, as before

    def _values(self) -> tuple[object, ...]:
        return (
            self.allowed,
            self.effective,
            self.traffic,
            self.resilience,
            self.mesh,
            self.anchors,
            self.issuer,
            self.namespaces,
            self.non_idempotent,
            self.access,
            self.declared,
            self.egress,
        )


@dataclass(slots=True, eq=False)
class _Aggregate:
    """Per-service pieces (allowed edges by server, effective edges by client) and their
    unions, built on first use. An edge belongs to one piece only (its server's, or its
    client's), which is what lets `diff_meaning` compare pieces instead of unions: pieces
    the engine did not recompute are the same objects on both sides of a plan."""

    allowed_pieces: dict[str, frozenset[AccessEdge]]
    effective_pieces: dict[str, frozenset[CallEdge]]
    allowed_union: frozenset[AccessEdge] | None = None
    effective_union: frozenset[CallEdge] | None = None

    def allowed(self) -> frozenset[AccessEdge]:
        if self.allowed_union is None:
            self.allowed_union = frozenset().union(*self.allowed_pieces.values())
        return self.allowed_union

    def effective(self) -> frozenset[CallEdge]:
        if self.effective_union is None:
            self.effective_union = frozenset().union(*self.effective_pieces.values())
        return self.effective_union


def summarise(compilation: Compilation) -> Meaning:
    """The meaning of one compiled side (call only for a side that compiles)."""
    return compilation.engine().query(side_meaning).meaning


@dataclass(frozen=True, slots=True, eq=False)
class _Summary:
    """A side's meaning as a query value (compared by identity: comparing two meanings
    builds both unions, and nothing in the engine reads this query)."""

    meaning: Meaning


def side_meaning(db: Engine) -> _Summary:
    allowed: dict[str, frozenset[AccessEdge]] = {}
    effective: dict[str, frozenset[CallEdge]] = {}
    traffic: dict[str, Traffic] = {}
    resilience: dict[str, Mapping[str, str]] = {}
    non_idempotent: dict[str, tuple[str, ...]] = {}
    access: dict[str, AccessShape] = {}
    declared: dict[str, frozenset[str]] = {}
    egress: dict[str, frozenset[ExternalCall]] = {}
    for key in db.query(ordered_keys):
        piece = db.query(meaning_piece, key)
        name = f"{key.namespace}/{key.name}"
        allowed[name] = piece.allowed
        effective[name] = piece.effective
        if piece.traffic is not None:
            traffic[name] = piece.traffic
        if piece.resilience:
            resilience[name] = piece.resilience
        if piece.non_idempotent:
            non_idempotent[name] = piece.non_idempotent
        access[name] = piece.access
        if piece.calls:
            declared[name] = frozenset(piece.calls)
        if piece.egress:
            egress[name] = piece.egress
    mesh, anchors, issuer = db.query(mesh_meaning)
    meaning = Meaning(
        traffic=traffic,
        resilience=resilience,
        mesh=mesh,
        anchors=anchors,
        issuer=issuer,
        namespaces=frozenset(db.query(namespaces)),
        non_idempotent=non_idempotent,
        access=access,
        declared=declared,
        egress=egress,
        callers=db.query(caller_labels),
        parts=_Aggregate(allowed, effective),
    )
    return _Summary(meaning)


@dataclass(frozen=True, slots=True)
class Piece:
    """One service's share of a meaning: its allowed edges as a server, its effective
    edges as a client, its traffic and its resilience."""

    allowed: frozenset[AccessEdge]
    effective: frozenset[CallEdge]
    traffic: Traffic | None
    """None for a caller-only service: no traffic reaches it."""
    resilience: Mapping[str, str]
    non_idempotent: tuple[str, ...]
    access: AccessShape
    """The requests the service's live policies allow (for the exact access diff)."""
    calls: tuple[str, ...]
    """The services it declares it calls."""
    egress: frozenset[ExternalCall] = frozenset()
    """The outside hosts and ports it calls through Externals."""


def meaning_piece(db: Engine, key: ServiceKey) -> Piece:
    model = MeshReader(db)
    view = model.services[key]
    record = db.query(service_record, key)
    effective: set[CallEdge] = set()
    for target in view.calls:
        server = model.services.get(target)
        if server is None:
            continue
        decision = decide_call(view, server, model)
        if decision.allowed:
            effective.update(
                CallEdge(str(decision.server), str(decision.client), op)
                for op in decision.operations
            )
    allowed = frozenset(
        AccessEdge(str(e.server), e.source.value, e.source.kind, e.operation, e.action, e.mode)
        for e in server_edges(view, model)
    )
    return Piece(
        allowed,
        frozenset(effective),
        None if view.client_only else traffic_of(record),
        resilience_of(view),
        tuple(sorted(non_idempotent_methods(view, model))),
        access_shape(
            record,
            default_allow=model.settings.default_action == "allow",
            trust_domain=model.settings.trust_domain,
        ),
        tuple(str(callee) for callee in view.calls),
        egress_of(model, view),
    )


def egress_of(model: MeshModel, view: ServiceView) -> frozenset[ExternalCall]:
    """Each host × port of each External `view` calls."""
    return frozenset(
        ExternalCall(str(view.key), str(external.key), f"{host}:{port.port}/{port.protocol}")
        for external in external_calls(model, view)
        for host in external.spec.hosts
        for port in external.spec.ports
    )


def caller_labels(db: Engine) -> Mapping[str, str]:
    """SPIFFE ID → the services running as it (or the ingress gateway), as reviewers
    know callers."""
    model = MeshReader(db)
    labels = {
        spiffe: ", ".join(str(key) for key in keys) for spiffe, keys in model.identities.items()
    }
    gateways = model.settings.ingress_gateways
    for gateway in gateways:
        label = GATEWAY_LABEL if len(gateways) == 1 else f"{GATEWAY_LABEL}:{gateway.name}"
        labels[gateway_spiffe(model, gateway)] = label
    return labels


def mesh_meaning(db: Engine) -> tuple[dict[str, str], dict[str, str], str | None]:
    return mesh_of(MeshReader(db))


def traffic_of(record: ServiceRecord) -> Traffic:
    """Shares at the rollout's current step (the record the backends read, so plan and
    render agree); no Rollout = 100 % to the only version, or unsplit across several."""
    traffic = record.traffic
    if traffic.rollout is None:
        versions = sorted(record.view.spec.versions)
        return Traffic(((versions[0], 100),) if len(versions) == 1 else None)
    match = tuple(
        _match_text(m.model_dump(by_alias=True, exclude_none=True, mode="json"))
        for m in traffic.matches
    )
    mirror = traffic.mirror
    text = f"{mirror.version} {mirror.percentage:g}%" if mirror is not None else None
    return Traffic(traffic.weights, match, text)


def _match_text(rule: dict[str, Any]) -> str:
    conditions = []
    for kind in ("headers", "cookies"):
        for name, matcher in sorted(rule.get(kind, {}).items()):
            how, value = next(iter(matcher.items()))
            conditions.append(f"{kind[:-1]} {name} {how} {value!r}")
    return f"{' and '.join(conditions)} → {rule['version']}"


def resilience_of(view: ServiceView) -> dict[str, str]:
    """Flattened Resilience fields (`retries.attempts` -> `3`), per port when scoped."""
    fields: dict[str, str] = {}
    for intent in view.resilience:
        data = intent.model.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        data.pop("service", None)
        port = data.pop("port", None)
        prefix = f"port {port}: " if port is not None else ""
        for path, value in flatten(data).items():
            fields[prefix + path] = value
    return fields


def mesh_of(model: MeshModel) -> tuple[dict[str, str], dict[str, str], str | None]:
    """Mesh settings flattened; the CA's anchors (name -> fingerprint) and issuer apart."""
    data = model.settings.model_dump(by_alias=True, exclude_none=True, mode="json")
    data.pop("ingressGateway", None)
    data.update(gateway_settings(model))
    ca = data.pop("ca", None)
    mtls = data.get("mtls", {})
    exceptions = mtls.pop("exceptions", [])
    flat = flatten(data)
    for item in exceptions:
        flat[f"mtls.exceptions[{item['service']}]"] = f"until {item['until']} ({item['reason']})"
    anchors: dict[str, str] = {}
    issuer = None
    if ca is not None:
        ca.pop("anchors", None)
        fingerprints = anchor_fingerprints(model.settings.ca)  # type: ignore[arg-type]
        for name, fingerprint in fingerprints.items():
            anchors[name] = fingerprint or "pem (not a usable certificate)"
        issuer = ca.pop("issuer", None)
        for path, value in flatten(ca).items():
            flat[f"ca.{path}"] = value
    return flat, anchors, issuer


def gateway_settings(model: MeshModel) -> dict[str, Any]:
    """The ingress gateways as in force (defaults applied), by name: one gateway reads the
    same whether written as a mapping or a one-item list."""
    return {
        f"ingressGateway[{gateway.name}]": {
            "api": gateway.api,
            "namespace": gateway.namespace,
            "serviceAccount": gateway.service_account,
            "selector": dict(gateway.selector),
            "deployment": gateway.deployment,
            "ports": list(gateway.ports),
            "sourceRanges": list(gateway.source_ranges),
            "hosts": list(gateway.hosts),
            "gateway": gateway.gateway or "(none)",
        }
        for gateway in model.settings.ingress_gateways
    }


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested mappings to dotted paths; leaves (and lists) as compact JSON-ish text."""
    out: dict[str, str] = {}
    if isinstance(data, dict) and data:
        for key in sorted(data):
            out.update(flatten(data[key], f"{prefix}{key}."))
        return out
    out[prefix.rstrip(".")] = _leaf_text(data)
    return out


def _leaf_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


# --------------------------------------------------------------------------- the diff

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that changed (`None` = absent on that side)."""

    subject: str
    field: str
    before: str | None
    after: str | None

    def text(self) -> str:
        before = "(unset)" if self.before is None else self.before
        after = "(unset)" if self.after is None else self.after
        return f"{self.subject}: {self.field} {before} → {after}"


@dataclass(frozen=True, slots=True)
class TrafficChange:
    service: str
    before: Traffic | None
    after: Traffic | None

    def text(self, *, qualify: bool) -> str:
        """Only what moved: shares, then A/B rules and mirroring when those changed."""
        name = service_label(self.service, qualify=qualify)
        if self.before is None or self.after is None:
            before = self.before.text() if self.before else "(no service)"
            after = self.after.text() if self.after else "(no service)"
            return f"{name}: {before} → {after}"
        parts = []
        if self.before.shares != self.after.shares:
            parts.append(f"{self.before.shares_text()} → {self.after.shares_text()}")
        if self.before.match != self.after.match:
            parts.append(
                f"A/B [{'; '.join(self.before.match) or 'none'}] → "
                f"[{'; '.join(self.after.match) or 'none'}]"
            )
        if self.before.mirror != self.after.mirror:
            parts.append(f"mirror {self.before.mirror or 'none'} → {self.after.mirror or 'none'}")
        return f"{name}: " + "; ".join(parts)


@dataclass(frozen=True, slots=True)
class MeaningDiff:
    allowed_added: tuple[AccessEdge, ...]
    allowed_removed: tuple[AccessEdge, ...]
    effective_added: tuple[CallEdge, ...]
    effective_removed: tuple[CallEdge, ...]
    traffic: tuple[TrafficChange, ...]
    resilience: tuple[FieldChange, ...]
    mesh: tuple[FieldChange, ...]
    trust: tuple[FieldChange, ...]
    qualify: bool
    non_idempotent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Head's `Meaning.non_idempotent` (what a retry change may repeat)."""
    access: tuple[AccessChange, ...] = ()
    """Exactly which requests each caller gained or lost, one example per caller, port
    and direction."""
    declared: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Head's declared calls (a lost call a caller declares will break)."""
    egress_added: tuple[ExternalCall, ...] = ()
    """Hosts and ports outside the mesh a service calls now and did not before."""
    egress_removed: tuple[ExternalCall, ...] = ()
    """Whether service names need their namespace (the mesh spans several namespaces)."""

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.allowed_added,
                self.allowed_removed,
                self.effective_added,
                self.effective_removed,
                self.egress_added,
                self.egress_removed,
                self.traffic,
                self.resilience,
                self.mesh,
                self.trust,
            )
        )


def diff_meaning(base: Meaning, head: Meaning) -> MeaningDiff:
    """What changed from base to head. Pieces a `MeaningCache` shared between the two
    summaries are the same objects: the identity test skips them unread."""
    traffic = tuple(
        TrafficChange(service, base.traffic.get(service), head.traffic.get(service))
        for service in sorted(_differing(base.traffic, head.traffic))
    )
    resilience: list[FieldChange] = []
    for service in sorted(_differing(base.resilience, head.resilience)):
        resilience.extend(
            _field_changes(
                service, base.resilience.get(service, {}), head.resilience.get(service, {})
            )
        )
    trust = _field_changes(
        "ca",
        {f"anchor {k}": v for k, v in base.anchors.items()},
        {f"anchor {k}": v for k, v in head.anchors.items()},
    )
    if base.issuer != head.issuer:
        trust.append(FieldChange("ca", "issuer", base.issuer, head.issuer))
    if base.parts is not None and head.parts is not None:
        allowed_added, allowed_removed = _edge_changes(
            base.parts.allowed_pieces, head.parts.allowed_pieces
        )
        effective_added, effective_removed = _edge_changes(
            base.parts.effective_pieces, head.parts.effective_pieces
        )
    else:
        allowed_added, allowed_removed = head.allowed - base.allowed, base.allowed - head.allowed
        effective_added = head.effective - base.effective
        effective_removed = base.effective - head.effective
    egress_added, egress_removed = _egress_changes(base, head)
    return MeaningDiff(
        allowed_added=tuple(sorted(allowed_added)),
        allowed_removed=tuple(sorted(allowed_removed)),
        effective_added=tuple(sorted(effective_added)),
        effective_removed=tuple(sorted(effective_removed)),
        traffic=traffic,
        resilience=tuple(resilience),
        mesh=tuple(_field_changes("mesh", base.mesh, head.mesh)),
        trust=tuple(trust),
        qualify=len(base.namespaces | head.namespaces) > 1,
        non_idempotent=head.non_idempotent,
        access=tuple(_access_changes(base, head)),
        declared=head.declared,
        egress_added=tuple(sorted(egress_added)),
        egress_removed=tuple(sorted(egress_removed)),
    )


def _egress_changes(base: Meaning, head: Meaning) -> tuple[set[ExternalCall], set[ExternalCall]]:
    """(gained, lost) outside destinations, over the services whose egress differs."""
    names = _differing(base.egress, head.egress)
    before = {call for name in names for call in base.egress.get(name, ())}
    after = {call for name in names for call in head.egress.get(name, ())}
    return after - before, before - after


def _access_changes(base: Meaning, head: Meaning) -> list[AccessChange]:
    """The exact request changes of every service whose live access differs."""
    labels = {**base.callers, **head.callers}
    out: list[AccessChange] = []
    for service in sorted(_differing(base.access, head.access)):
        out.extend(changes(service, base.access.get(service), head.access.get(service), labels))
    return out


def _edge_changes(
    before: dict[str, frozenset[E]], after: dict[str, frozenset[E]]
) -> tuple[Iterable[E], Iterable[E]]:
    """The edges added to and removed from the union of `before`'s pieces by `after`'s.
    An edge belongs to one service's piece only (its server's, or its client's), so the
    difference of the unions is the union of the differences of the pieces that differ."""
    added: set[E] = set()
    removed: set[E] = set()
    for name, piece in after.items():
        old = before.get(name)
        if old is not piece:
            if old is None:
                added.update(piece)
            else:
                added.update(piece - old)
                removed.update(old - piece)
    if before.keys() != after.keys():
        for name, old in before.items():
            if name not in after:
                removed.update(old)
    return added, removed


def _differing(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ (absent on one side counts)."""
    out = [
        key
        for key, value in after.items()
        if (old := before.get(key)) is not value and old != value
    ]
    out.extend(key for key in before if key not in after)
    return out


def _field_changes(
    subject: str, before: Mapping[str, str], after: Mapping[str, str]
) -> list[FieldChange]:
    return [
        FieldChange(subject, name, before.get(name), after.get(name))
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]
