"""Resolve validated intents into per-service views.

Lint rules and backends read this model instead of the raw intents, so every reference
is resolved once, here. Unresolvable references are kept (as None) for the reference
rules to report; nothing in this module reports findings itself.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from compiler.kinds.access_policy.model import AccessPolicyDocument
from compiler.kinds.common import split_ref
from compiler.kinds.mesh.model import MeshDocument, MeshSpec
from compiler.kinds.resilience.model import ResilienceDocument
from compiler.kinds.rollout.model import RolloutDocument
from compiler.kinds.service.model import ServiceDocument
from compiler.validate import Intent


class ServiceKey(NamedTuple):
    """A service's (namespace, name). A tuple, so hashing, equality and order run in C:
    the rules, the meaning and the lowering of a 1,000-service mesh look keys up some
    10^5 times per compile (a dataclass's `__hash__` is a Python call each time)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, ref: str, namespace: str) -> ServiceKey:
        return _parse_key(ref, namespace)

    def short(self, namespace: str) -> str:
        """`name` within `namespace`, else `ns/name` — how users write references."""
        return self.name if self.namespace == namespace else str(self)


@functools.lru_cache(maxsize=65536)
def _parse_key(ref: str, namespace: str) -> ServiceKey:
    """Memoised: the rules of a 1,000-service mesh resolve the same few thousand references
    some 300,000 times per lint (keys are immutable, so sharing them is safe)."""
    ns, name = split_ref(ref, namespace)
    return ServiceKey(ns, name)


@dataclass(slots=True)
class ServiceView:
    """Everything the model knows about one service, from every kind that names it."""

    key: ServiceKey
    intent: Intent[ServiceDocument]
    selector: dict[str, str]
    service_account: str
    spiffe_id: str
    policies: list[Intent[AccessPolicyDocument]] = field(default_factory=list)
    rollouts: list[Intent[RolloutDocument]] = field(default_factory=list)
    resilience: list[Intent[ResilienceDocument]] = field(default_factory=list)
    resolved_calls: list[ServiceKey] | None = field(default=None, repr=False, compare=False)
    match_index: Any = field(default=None, repr=False, compare=False)
    """Filled by `graph.matching_rules`: the enforced rules with their sources resolved."""

    @property
    def spec(self) -> Any:
        return self.intent.model.spec

    @property
    def calls(self) -> list[ServiceKey]:
        """The declared calls, resolved (computed once: the intent is immutable)."""
        if self.resolved_calls is None:
            namespace = self.key.namespace
            self.resolved_calls = [ServiceKey.parse(ref, namespace) for ref in self.spec.calls]
        return self.resolved_calls

    def version_labels(self, version: str) -> dict[str, str]:
        """The selector ANDed with the version's extra labels."""
        labels = dict(self.selector)
        labels.update(self.spec.versions[version].labels)
        return labels

    @property
    def has_restriction(self) -> bool:
        return bool(self.policies)


@dataclass(slots=True, weakref_slot=True)
class MeshModel:
    mesh: Intent[MeshDocument] | None
    settings: MeshSpec
    meshes: list[Intent[MeshDocument]]
    services: dict[ServiceKey, ServiceView]
    duplicate_services: list[Intent[ServiceDocument]]
    policies: list[Intent[AccessPolicyDocument]]
    rollouts: list[Intent[RolloutDocument]]
    resilience: list[Intent[ResilienceDocument]]
    identities: dict[str, list[ServiceKey]]
    lint_index: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Lookups the lint rules compute once per model (`compiler.lint.subjects`)."""
    change: ModelChange | None = field(default=None, repr=False, compare=False)
    """Set when this model was re-resolved from an earlier one (`compiler.model.delta`):
    which services it rebuilt, so later phases can redo only those."""

    @property
    def name(self) -> str:
        return self.mesh.model.metadata.name if self.mesh else "mesh"

    @property
    def namespaces(self) -> list[str]:
        return sorted({key.namespace for key in self.services})

    def patched_from(self, previous: MeshModel | None) -> bool:
        """Whether this model was re-resolved from `previous` (`ModelChange`): then every
        untouched service's view, the Mesh document and settings, and the services' keys,
        order and identities are the same objects or values as in `previous`."""
        return (
            self.change is not None and previous is not None and self.change.previous() is previous
        )

    def service(self, ref: str, namespace: str) -> ServiceView | None:
        return self.services.get(ServiceKey.parse(ref, namespace))

    def spiffe(self, namespace: str, service_account: str) -> str:
        return f"spiffe://{self.settings.trust_domain}/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True, slots=True)
class ModelChange:
    """How a model differs from the one it was re-resolved from.

    Every service outside `touched` has the very same view (and intents) in both models,
    and the mesh-wide facts — the Mesh document, and which services exist with which
    identities, in which order — are equal. A phase that kept its per-service results for
    `previous` may reuse them for every service that neither is touched nor reads one."""

    previous: weakref.ref[MeshModel]
    """Weak: a chain of models must not keep every earlier mesh alive."""
    touched: frozenset[ServiceKey]
    """Every key with a document in a changed file, before or after the change: a
    Service's key or the `spec.service` of an AccessPolicy, Rollout or Resilience."""
    removed: tuple[Intent[Any], ...]
    """The intents of the changed files in the earlier model."""
    added: tuple[Intent[Any], ...]
    """The intents of the changed files in this model."""


def resolve_model(intents: list[Intent[Any]]) -> MeshModel:
    """The model of `intents`, in one pass over them (a re-plan resolves ~3,000 intents)."""
    by_kind: dict[str, list[Intent[Any]]] = {
        "Mesh": [],
        "Service": [],
        "AccessPolicy": [],
        "Rollout": [],
        "Resilience": [],
    }
    for intent in intents:
        bucket = by_kind.get(intent.doc.kind)
        if bucket is not None:
            bucket.append(intent)
    meshes = by_kind["Mesh"]
    mesh = meshes[0] if meshes else None
    settings = mesh.model.spec if mesh else MeshSpec()
    services: dict[ServiceKey, ServiceView] = {}
    duplicates: list[Intent[ServiceDocument]] = []
    identities: dict[str, list[ServiceKey]] = {}
    prefix = f"spiffe://{settings.trust_domain}/ns/"
    for intent in by_kind["Service"]:
        key, namespace, selector, account = service_facts(intent)
        if key in services:
            duplicates.append(intent)
            continue
        spiffe = f"{prefix}{namespace}/sa/{account}"
        services[key] = ServiceView(
            key=key,
            intent=intent,
            selector=dict(selector),
            service_account=account,
            spiffe_id=spiffe,
        )
        found = identities.get(spiffe)
        if found is None:
            identities[spiffe] = [key]
        else:
            found.append(key)
    model = MeshModel(
        mesh=mesh,
        settings=settings,
        meshes=meshes,
        services=services,
        duplicate_services=duplicates,
        policies=by_kind["AccessPolicy"],
        rollouts=by_kind["Rollout"],
        resilience=by_kind["Resilience"],
        identities=identities,
    )
    for policy in model.policies:
        target = _target(services, policy)
        if target:
            target.policies.append(policy)
    for rollout in model.rollouts:
        target = _target(services, rollout)
        if target:
            target.rollouts.append(rollout)
    for res in model.resilience:
        target = _target(services, res)
        if target:
            target.resilience.append(res)
    return model


def _target(services: dict[ServiceKey, ServiceView], intent: Intent[Any]) -> ServiceView | None:
    """The declared service a policy's `spec.service` names, if any."""
    return services.get(target_key(intent))


_TARGETS: dict[int, tuple[Intent[Any], Any]] = {}
_SERVICES: dict[int, tuple[Intent[Any], Any]] = {}
"""id(intent) -> (intent, what `resolve_model` reads of it). Intents are immutable and a
`FileCache` hands out the same objects for unchanged files, so a re-compile after a
one-file change reads ~3,000 intents' fields from here, not from their pydantic models
(~5x faster). The intent is kept in the entry, so its id cannot be reused meanwhile."""
_FACTS_LIMIT = 16_384
"""Entries per table before it is emptied (bounds what it keeps alive)."""


def _facts(intent: Intent[Any], derive: Any, table: dict[int, tuple[Intent[Any], Any]]) -> Any:
    found = table.get(id(intent))
    if found is not None and found[0] is intent:
        return found[1]
    if len(table) >= _FACTS_LIMIT:
        table.clear()
    facts = derive(intent)
    table[id(intent)] = (intent, facts)
    return facts


def target_key(intent: Intent[Any]) -> ServiceKey:
    """The key an AccessPolicy, Rollout or Resilience names in `spec.service`."""
    key: ServiceKey = _facts(intent, _derive_target, _TARGETS)
    return key


def _derive_target(intent: Intent[Any]) -> ServiceKey:
    model = intent.model
    return _parse_key(model.spec.service, model.metadata.namespace)


_ServiceFacts = tuple[ServiceKey, str, dict[str, str], str]


def service_facts(intent: Intent[ServiceDocument]) -> _ServiceFacts:
    """A Service's key, namespace, selector (never mutated: views copy it) and account."""
    facts: _ServiceFacts = _facts(intent, _derive_service, _SERVICES)
    return facts


def _derive_service(intent: Intent[ServiceDocument]) -> _ServiceFacts:
    meta = intent.model.metadata
    spec = intent.model.spec
    key = _parse_key(meta.name, meta.namespace)  # interned: lookups hit by identity
    selector = dict(spec.selector) if spec.selector is not None else {"app": meta.name}
    return key, meta.namespace, selector, spec.identity or meta.name
