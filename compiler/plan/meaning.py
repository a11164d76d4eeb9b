"""The meaning diff: what a change does to access, traffic, resilience, mTLS and trust.

Each side of a plan is summarised once into a `Meaning` (plain, comparable values);
the diff between two summaries is what reviewers read instead of YAML.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from compiler.api import Compilation
from compiler.kinds.mesh.anchors import anchor_fingerprints
from compiler.model.graph import allowed_edges, decide_call
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView


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


def service_label(key: str, *, qualify: bool) -> str:
    return key if qualify else key.split("/", 1)[-1]


def peer_label(value: str, kind: str, *, qualify: bool) -> str:
    if kind == "service":
        return service_label(value, qualify=qualify)
    if kind == "any":
        return "* (any mesh identity)"
    if kind == "ingress":
        return "ingress-gateway"
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
        )


@dataclass(slots=True)
class MeaningCache:
    """Per-service pieces of a side's meaning, reused across sides and re-plans.

    Keys hold the identities of the intent objects a piece was computed from; `FileCache`
    hands out the same objects for unchanged files, so after a one-file change only the
    services that file touches are recomputed. Each value keeps its inputs alive, so an id
    in a key can never be reused by another object while the entry exists.

    `pieces` holds each service's whole share (allowed edges as a server, effective edges
    as a client, traffic, resilience), reused while its own inputs are the same objects
    and neither the services it calls nor the services their rules name changed; the
    finer caches below serve the services that do change.

    `summary` goes further when a model was re-resolved from the last summarised one
    (`MeshModel.change`): the next summary is the last one with only the touched services
    and the services reading them recomputed, in time proportional to the change.
    """

    allowed: dict[tuple[Any, ...], tuple[tuple[Any, ...], frozenset[AccessEdge]]] = field(
        default_factory=dict
    )
    calls: dict[tuple[Any, ...], tuple[tuple[Any, ...], frozenset[CallEdge]]] = field(
        default_factory=dict
    )
    named: dict[tuple[int, ...], _Named] = field(default_factory=dict)
    effective: dict[tuple[int, ...], tuple[tuple[Any, ...], frozenset[CallEdge]]] = field(
        default_factory=dict
    )
    traffic: dict[tuple[Any, ...], tuple[tuple[Any, ...], Traffic]] = field(default_factory=dict)
    resilience: dict[tuple[int, ...], tuple[tuple[Any, ...], Mapping[str, str]]] = field(
        default_factory=dict
    )
    pieces: dict[tuple[Any, ...], _Piece] = field(default_factory=dict)
    summary: _Summary | None = None
    """The last summary by service: the next one patches it when its model was
    re-resolved from this one's (`MeshModel.change`)."""
    recomputed: frozenset[ServiceKey] | None = None
    """The services whose pieces the last summary recomputed when it patched the one
    before; None when it went over every service (for tests and benchmarks)."""
    settings: tuple[object, tuple[dict[str, str], dict[str, str], str | None]] | None = None
    """The last mesh settings object and `mesh_of` of it (reading CA anchors is costly)."""
    _changes: dict[int, tuple[dict[ServiceKey, str], set[ServiceKey]]] = field(default_factory=dict)
    """`changed_since` results against `_changes_now`, kept across summaries while the
    SPIFFE map is the same object (each entry keeps its basis, so ids are not reused)."""
    _changes_now: dict[ServiceKey, str] | None = None
    _token_changes: dict[int, set[ServiceKey]] = field(default_factory=dict)

    def trim(self, limit: int) -> None:
        """Forget everything once the cache outgrows `limit` entries (a crude bound)."""
        if len(self.allowed) + len(self.calls) + len(self.effective) > limit:
            self.allowed.clear()
            self.calls.clear()
            self.named.clear()
            self.effective.clear()
            self.traffic.clear()
            self.resilience.clear()
        if len(self.pieces) > limit // 8:
            self.pieces.clear()

    def mesh_of(self, model: MeshModel) -> tuple[dict[str, str], dict[str, str], str | None]:
        """`mesh_of`, reused while the settings are the same object (the entry keeps it
        alive, and the result is only ever read)."""
        hit = self.settings
        if hit is None or hit[0] is not model.settings:
            hit = self.settings = (model.settings, mesh_of(model))
        return hit[1]

    def tokens_changed_since(
        self, basis: dict[ServiceKey, tuple[object, ...]], now: dict[ServiceKey, tuple[object, ...]]
    ) -> set[ServiceKey]:
        """Services added, removed, or whose Service or AccessPolicy intents changed
        between two summaries."""
        hit = self._token_changes.get(id(basis))
        if hit is None:
            # tuples compare items by identity first: the same objects never reach __eq__,
            # and other objects with equal contents would summarise the same anyway
            hit = {key for key, token in now.items() if basis.get(key) != token}
            hit.update(key for key in basis if key not in now)
            self._token_changes[id(basis)] = hit  # basis is alive (a piece holds it)
        return hit

    def changed_since(
        self, basis: dict[ServiceKey, str], now: dict[ServiceKey, str]
    ) -> set[ServiceKey]:
        """Services added, removed or given another SPIFFE ID between two summaries."""
        if self._changes_now is not now:
            self._changes, self._changes_now = {}, now
        found = self._changes.get(id(basis))
        if found is not None and found[0] is basis:
            return found[1]
        hit = {key for key, spiffe in now.items() if basis.get(key) != spiffe}
        hit.update(key for key in basis if key not in now)
        self._changes[id(basis)] = (basis, hit)
        return hit


@dataclass(slots=True)
class _Named:
    """One server's named identities, valid while none of `keys` changed since `basis`."""

    policies: tuple[Any, ...]
    keys: tuple[ServiceKey | None, ...]
    named: frozenset[ServiceKey]
    identities: tuple[str | None, ...]
    basis: dict[ServiceKey, str]


@dataclass(slots=True, eq=False)
class _Aggregate:
    """Per-service pieces (allowed edges by server, effective edges by client) and their
    unions, built on first use. An edge belongs to one piece only (its server's, or its
    client's), which is what lets `diff_meaning` compare pieces instead of unions."""

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


def summarise(compilation: Compilation, cache: MeaningCache | None = None) -> Meaning:
    """The meaning of one compiled side (call only for a side that compiles)."""
    model = compilation.model
    cache = cache if cache is not None else MeaningCache()
    cache.trim(16 * (len(model.services) + 1) * 4)
    cache._token_changes = {}
    last = cache.summary
    if last is not None and last.model is model and last.rollout_state == compilation.rollout_state:
        cache.recomputed = frozenset()
        return last.meaning  # the same side again: a summary reads nothing else
    cache.summary, cache.recomputed = None, None
    if last is not None and _continues(last, compilation):
        assert model.change is not None  # _continues checked it
        summary = _patched(compilation, cache, last, model.change.touched)
    else:
        summary = _fresh(compilation, cache, last)
    cache.summary = summary
    cache._token_changes = {}
    return summary.meaning


@dataclass(slots=True)
class _Summary:
    """One summarised model with its pieces by service: what the next summary patches."""

    model: MeshModel
    """Strong: `ModelChange.previous` is weak, and identity is the test of continuity."""
    rollout_state: Mapping[str, int]
    pieces: dict[ServiceKey, _Piece]
    """In the services' sorted order, as the meaning's dicts are."""
    spiffes: dict[ServiceKey, str]
    tokens: dict[ServiceKey, tuple[object, ...]]
    aggregate: _Aggregate
    meaning: Meaning
    dependents: dict[ServiceKey, set[ServiceKey]] | None = None
    """Which services' pieces call each service (the inverse of `_Piece.calls`), built by
    the first summary that patches this one and kept up to date after. Calls are all a
    patch needs: `ModelChange` keeps every identity, so the services a server's rules name
    cannot change which of them match (`_Piece.named` matters to the full path only)."""


def _continues(last: _Summary, compilation: Compilation) -> bool:
    """Whether `compilation`'s model was re-resolved from the last summarised one: then
    every service the change did not touch has the same view, and the services, their
    order and identities, the mesh settings and the rollout state are the same."""
    return (
        compilation.model.patched_from(last.model)
        and compilation.rollout_state == last.rollout_state
    )


def _fresh(compilation: Compilation, cache: MeaningCache, last: _Summary | None) -> _Summary:
    """Every service's piece, each reused from `cache.pieces` while still valid."""
    model = compilation.model
    spiffes = {key: view.spiffe_id for key, view in model.services.items()}
    if last is not None and last.spiffes == spiffes:
        # the same object while the identities are equal: the `_Named` entries validated
        # against it stay valid by identity, not by an O(services) comparison each summary
        spiffes = last.spiffes
    tokens = {key: (view.intent, *view.policies) for key, view in model.services.items()}
    pieces: dict[ServiceKey, _Piece] = {}
    allowed_pieces: dict[str, frozenset[AccessEdge]] = {}
    effective_pieces: dict[str, frozenset[CallEdge]] = {}
    named: dict[int, _Named] = {}
    traffic: dict[str, Traffic] = {}
    resilience: dict[str, Mapping[str, str]] = {}
    for key in sorted(model.services, key=_order):
        view = model.services[key]
        name = f"{key.namespace}/{key.name}"
        fingerprint, inputs = _piece_inputs(compilation, view)
        piece = cache.pieces.get(fingerprint)
        if piece is not None and piece.basis is not tokens:
            if not piece.reads(cache.tokens_changed_since(piece.basis, tokens)):
                piece.basis = tokens
            else:
                piece = None
        if piece is None:
            piece = _piece(compilation, view, spiffes, named, cache, inputs, tokens)
            cache.pieces[fingerprint] = piece
        pieces[key] = piece
        allowed_pieces[name] = piece.allowed
        effective_pieces[name] = piece.effective
        traffic[name] = piece.traffic
        if piece.resilience:
            resilience[name] = piece.resilience
    aggregate = _Aggregate(allowed_pieces, effective_pieces)
    mesh, anchors, issuer = cache.mesh_of(model)
    meaning = Meaning(
        traffic=traffic,
        resilience=resilience,
        mesh=mesh,
        anchors=anchors,
        issuer=issuer,
        namespaces=frozenset(model.namespaces),
        parts=aggregate,
    )
    state = dict(compilation.rollout_state)
    return _Summary(model, state, pieces, spiffes, tokens, aggregate, meaning)


def _patched(
    compilation: Compilation, cache: MeaningCache, last: _Summary, touched: frozenset[ServiceKey]
) -> _Summary:
    """`last` with the pieces of the touched services and of the services that call them
    recomputed; every other piece (and the order of every dict) is the last one's."""
    model = compilation.model
    dependents = last.dependents if last.dependents is not None else _dependents(last.pieces)
    redo = {key for key in touched if key in model.services}
    for key in touched:
        redo.update(dependents.get(key, ()))
    tokens = dict(last.tokens)
    for key in redo:
        view = model.services[key]
        tokens[key] = (view.intent, *view.policies)
    pieces = last.pieces  # last is discarded: patch its dicts in place
    allowed_pieces = dict(last.aggregate.allowed_pieces)
    effective_pieces = dict(last.aggregate.effective_pieces)
    traffic = dict(last.meaning.traffic)
    resilience = dict(last.meaning.resilience)
    reorder = False
    named: dict[int, _Named] = {}
    for key in redo:
        view = model.services[key]
        fingerprint, inputs = _piece_inputs(compilation, view)
        piece = _piece(compilation, view, last.spiffes, named, cache, inputs, tokens)
        cache.pieces[fingerprint] = piece
        _relink(dependents, key, pieces[key].calls, piece.calls)
        pieces[key] = piece
        name = f"{key.namespace}/{key.name}"
        allowed_pieces[name] = piece.allowed
        effective_pieces[name] = piece.effective
        traffic[name] = piece.traffic
        if piece.resilience:
            reorder = reorder or name not in resilience
            resilience[name] = piece.resilience
        else:
            resilience.pop(name, None)
    if reorder:  # a service gained resilience: keep the sorted order a fresh summary has
        resilience = {
            f"{key.namespace}/{key.name}": piece.resilience
            for key, piece in pieces.items()
            if piece.resilience
        }
    aggregate = _Aggregate(allowed_pieces, effective_pieces)
    meaning = replace(
        last.meaning,
        traffic=traffic,
        resilience=resilience,
        parts=aggregate,
    )
    cache.recomputed = frozenset(redo)
    return _Summary(
        model,
        last.rollout_state,
        pieces,
        last.spiffes,
        tokens,
        aggregate,
        meaning,
        dependents,
    )


def _dependents(pieces: dict[ServiceKey, _Piece]) -> dict[ServiceKey, set[ServiceKey]]:
    out: dict[ServiceKey, set[ServiceKey]] = {}
    for key, piece in pieces.items():
        for dependency in piece.calls:
            found = out.get(dependency)
            if found is None:
                out[dependency] = {key}
            else:
                found.add(key)
    return out


def _relink(
    dependents: dict[ServiceKey, set[ServiceKey]],
    key: ServiceKey,
    before: frozenset[ServiceKey],
    after: frozenset[ServiceKey],
) -> None:
    """Keep `dependents` the inverse of the pieces' calls as `key`'s change."""
    for dependency in before - after:
        dependents[dependency].discard(key)
    for dependency in after - before:
        dependents.setdefault(dependency, set()).add(key)


@dataclass(slots=True)
class _Piece:
    """One service's share of a meaning, valid while its own inputs (the fingerprint)
    are the same objects and nothing it `reads` changed since `basis`."""

    inputs: tuple[object, ...]
    """Kept alive so that the ids in the fingerprint cannot be reused by other objects."""
    calls: frozenset[ServiceKey]
    """The services it calls (their policies decide its effective edges)."""
    named: tuple[frozenset[ServiceKey], ...]
    """The services those servers' rules name (their identities decide which rules match),
    one shared set per server: a hub's N callers hold one set, not N copies of it."""
    allowed: frozenset[AccessEdge]
    effective: frozenset[CallEdge]
    traffic: Traffic
    resilience: Mapping[str, str]
    basis: dict[ServiceKey, tuple[object, ...]]

    def reads(self, changed: set[ServiceKey]) -> bool:
        """Whether any of `changed` is a service it calls or one their rules name."""
        return not changed.isdisjoint(self.calls) or any(
            not changed.isdisjoint(named) for named in self.named
        )


def _piece_inputs(
    compilation: Compilation, view: ServiceView
) -> tuple[tuple[Any, ...], tuple[object, ...]]:
    """A service's own inputs: the mesh document (settings), its Service, AccessPolicy,
    Rollout and Resilience intents, by identity, and its rollouts' states."""
    inputs: tuple[object, ...] = (compilation.model.mesh, view.intent, *view.policies)
    inputs += (*view.rollouts, *view.resilience)
    states = tuple(
        compilation.rollout_state.get(f"{r.model.metadata.namespace}/{r.model.metadata.name}")
        for r in view.rollouts
    )
    return (len(view.policies), len(view.rollouts), states, *map(id, inputs)), inputs


def _piece(
    compilation: Compilation,
    view: ServiceView,
    spiffes: dict[ServiceKey, str],
    named: dict[int, _Named],
    cache: MeaningCache,
    inputs: tuple[object, ...],
    tokens: dict[ServiceKey, tuple[object, ...]],
) -> _Piece:
    model = compilation.model
    parts = []
    named_sets: list[frozenset[ServiceKey]] = []
    for target in view.calls:
        server = model.services.get(target)
        if server is None:
            continue
        identities = named.get(id(server))
        if identities is None:
            identities = named[id(server)] = _named_identities(server, spiffes, cache)
        named_sets.append(identities.named)
        parts.append(_call_effective(view, server, identities.identities, model, cache))
    return _Piece(
        inputs,
        frozenset(view.calls),
        tuple(named_sets),
        _server_allowed(view, model, cache),
        _union(parts, cache),
        _traffic(compilation, view, cache),
        _resilience(view, cache),
        tokens,
    )


def _order(key: ServiceKey) -> tuple[str, str]:
    return (key.namespace, key.name)


E = TypeVar("E")


def _union(parts: list[frozenset[CallEdge]], cache: MeaningCache) -> frozenset[CallEdge]:
    """One client's effective edges: the same set object while its parts are the same."""
    key = tuple(map(id, parts))
    hit = cache.effective.get(key)
    if hit is None:
        hit = (tuple(parts), frozenset().union(*parts))
        cache.effective[key] = hit
    return hit[1]


def _traffic(compilation: Compilation, view: ServiceView, cache: MeaningCache) -> Traffic:
    """`traffic_of`, memoised on what it reads: the service, its first rollout, its state."""
    rollout = view.rollouts[0] if view.rollouts else None
    state = None
    if rollout is not None:
        meta = rollout.model.metadata
        state = compilation.rollout_state.get(f"{meta.namespace}/{meta.name}")
    key = (id(view.intent), id(rollout), state)
    hit = cache.traffic.get(key)
    if hit is None:
        hit = ((view.intent, rollout), traffic_of(compilation, view))
        cache.traffic[key] = hit
    return hit[1]


def _resilience(view: ServiceView, cache: MeaningCache) -> Mapping[str, str]:
    key = tuple(map(id, view.resilience))
    hit = cache.resilience.get(key)
    if hit is None:
        hit = (tuple(view.resilience), resilience_of(view))
        cache.resilience[key] = hit
    return hit[1]


def _server_allowed(
    view: ServiceView, model: MeshModel, cache: MeaningCache
) -> frozenset[AccessEdge]:
    """`allowed_edges` for one server: a function of its policies and two mesh settings
    (the Service intent stands for the server's key)."""
    settings = model.settings
    inputs = (view.intent, *view.policies)
    key = (*map(id, inputs), settings.default_action, settings.trust_domain)
    hit = cache.allowed.get(key)
    if hit is None:
        alone = replace(model, services={view.key: view})
        edges = frozenset(
            AccessEdge(str(e.server), e.source.value, e.source.kind, e.operation, e.action, e.mode)
            for e in allowed_edges(alone)
        )
        hit = (inputs, edges)
        cache.allowed[key] = hit
    return hit[1]


def _named_identities(
    server: ServiceView, spiffes: dict[ServiceKey, str], cache: MeaningCache
) -> _Named:
    """The services the server's rules name, and their SPIFFE IDs (None: no such service)."""
    ids = tuple(map(id, server.policies))
    hit = cache.named.get(ids)
    if hit is not None and hit.basis is not spiffes:
        if cache.changed_since(hit.basis, spiffes).isdisjoint(hit.named):
            hit.basis = spiffes
        else:
            hit = _Named(hit.policies, hit.keys, hit.named, _spiffes(hit.keys, spiffes), spiffes)
            cache.named[ids] = hit
    if hit is None:
        keys = tuple(
            None
            if source.service == "*"
            else ServiceKey.parse(source.service, policy.model.metadata.namespace)
            for policy in server.policies
            for rule in policy.model.spec.rules
            for source in rule.from_
            if source.service
        )
        named = frozenset(key for key in keys if key is not None)
        hit = _Named(tuple(server.policies), keys, named, _spiffes(keys, spiffes), spiffes)
        cache.named[ids] = hit
    return hit


def _spiffes(
    keys: tuple[ServiceKey | None, ...], spiffes: dict[ServiceKey, str]
) -> tuple[str | None, ...]:
    return tuple("*" if key is None else spiffes.get(key) for key in keys)


def _call_effective(
    client: ServiceView,
    server: ServiceView,
    named: tuple[str | None, ...],
    model: MeshModel,
    cache: MeaningCache,
) -> frozenset[CallEdge]:
    """`decide_call` for one declared call, keyed by everything the decision reads: both
    services (their intents stand for their keys), the server's policies, the identities
    its rules name (`named`, by identity: `_named_identities` hands out the same tuple
    while they are unchanged, and hashing it per call would cost every caller of a hub
    the length of its rules), two mesh settings."""
    settings = model.settings
    inputs = (client.intent, server.intent, *server.policies, named)
    key = (
        client.spiffe_id,
        *map(id, inputs),
        settings.default_action,
        settings.trust_domain,
    )
    hit = cache.calls.get(key)
    if hit is None:
        decision = decide_call(client, server, model)
        edges = frozenset(
            CallEdge(str(decision.server), str(decision.client), op)
            for op in (decision.operations if decision.allowed else ())
        )
        hit = (inputs, edges)
        cache.calls[key] = hit
    return hit[1]


def traffic_of(compilation: Compilation, view: ServiceView) -> Traffic:
    """Shares at the rollout's current step (the lowering's own rule, so plan and render
    agree); no Rollout = 100 % to the only version, or unsplit across several."""
    from compiler.lower.istio.common import LowerContext
    from compiler.lower.istio.virtual_service import current_weights

    versions = sorted(view.spec.versions)
    if not view.rollouts:
        return Traffic(((versions[0], 100),) if len(versions) == 1 else None)
    rollout = view.rollouts[0].model
    spec = rollout.spec
    context = LowerContext(
        model=compilation.model, now=compilation.now, rollout_state=compilation.rollout_state
    )
    state_key = f"{rollout.metadata.namespace}/{rollout.metadata.name}"
    shares = {v: w for v, w in current_weights(context, spec, state_key).items() if w > 0}
    if not shares:
        shares = {spec.stable: 100}
    match = tuple(
        _match_text(m.model_dump(by_alias=True, exclude_none=True, mode="json")) for m in spec.match
    )
    mirror = f"{spec.mirror.version} {spec.mirror.percentage:g}%" if spec.mirror else None
    return Traffic(tuple(sorted(shares.items())), match, mirror)


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
    """Whether service names need their namespace (the mesh spans several namespaces)."""

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.allowed_added,
                self.allowed_removed,
                self.effective_added,
                self.effective_removed,
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
    )


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
