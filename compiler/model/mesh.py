"""The resolved mesh: per-service views and the mesh-wide facts every later stage reads.

Lint rules and backends read a `MeshModel` instead of the raw intents, so every reference
is resolved once. Two implementations share that interface: `MeshSnapshot`, the plain
value a compilation hands to its callers, and `compiler.model.queries.MeshReader`, which
the incremental engine's queries read through so that what they read is recorded.
Unresolvable references are kept (as None) for the reference rules to report; nothing in
this package reports findings itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar

from compiler.kinds.access_policy.model import AccessPolicyDocument
from compiler.kinds.common import split_ref
from compiler.kinds.external.model import ExternalDocument, ExternalSpec
from compiler.kinds.mesh.model import MeshDocument, MeshSpec
from compiler.kinds.resilience.model import ResilienceDocument
from compiler.kinds.rollout.model import RolloutDocument
from compiler.kinds.service.model import ServiceDocument
from compiler.validate import Intent

T = TypeVar("T")


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
    """Memoised (a pure function of two strings): rules resolve the same few thousand
    references many times per lint, and equal keys then share one object."""
    ns, name = split_ref(ref, namespace)
    return ServiceKey(ns, name)


class Attached:
    """The attached documents of one service key, by kind, with the built-in kinds named.

    For anything with an `attached: Mapping[str, tuple[Intent, ...]]` (a view, a lint
    subject)."""

    __slots__ = ()
    attached: Mapping[str, tuple[Intent[Any], ...]]

    @property
    def policies(self) -> tuple[Intent[AccessPolicyDocument], ...]:
        return self.attached.get("AccessPolicy", ())

    @property
    def rollouts(self) -> tuple[Intent[RolloutDocument], ...]:
        return self.attached.get("Rollout", ())

    @property
    def resilience(self) -> tuple[Intent[ResilienceDocument], ...]:
        return self.attached.get("Resilience", ())


@dataclass(frozen=True, slots=True)
class ServiceView(Attached):
    """Everything the model knows about one declared service, from every kind naming it.

    A value: it names other services by key only, so whoever wants to know about another
    service asks the model (and, inside a query, that read is recorded)."""

    key: ServiceKey
    intent: Intent[ServiceDocument]
    selector: Mapping[str, str]
    service_account: str
    spiffe_id: str
    attached: Mapping[str, tuple[Intent[Any], ...]]
    """Kind -> the documents of that kind written for this service (`spec.service`), in
    tree order; the kinds are those `compiler.kinds.REGISTRY` marks as attached."""
    calls: tuple[ServiceKey, ...] = ()
    """The declared calls, resolved to keys, in the order written."""

    @property
    def spec(self) -> Any:
        return self.intent.model.spec

    def version_labels(self, version: str) -> dict[str, str]:
        """The selector ANDed with the version's extra labels."""
        labels = dict(self.selector)
        labels.update(self.spec.versions[version].labels)
        return labels

    @property
    def client_only(self) -> bool:
        """A caller only (no ports): it has pods and an identity, but no host to call."""
        return not self.spec.ports


@dataclass(frozen=True, slots=True)
class ExternalView:
    """A declared External: a destination outside the mesh that `calls:` may name.
    Services and Externals share one space of names (lint rejects a clash)."""

    key: ServiceKey
    intent: Intent[ExternalDocument]

    @property
    def spec(self) -> ExternalSpec:
        return self.intent.model.spec


class MeshModel(Protocol):
    """What lint rules and backends may read of the resolved mesh."""

    @property
    def mesh(self) -> Intent[MeshDocument] | None: ...
    @property
    def settings(self) -> MeshSpec: ...
    @property
    def meshes(self) -> tuple[Intent[MeshDocument], ...]: ...
    @property
    def services(self) -> Mapping[ServiceKey, ServiceView]: ...
    @property
    def duplicate_services(self) -> tuple[Intent[ServiceDocument], ...]: ...
    @property
    def externals(self) -> Mapping[ServiceKey, ExternalView]:
        """The declared Externals by key (the first document of each key), in tree order."""
        ...

    @property
    def duplicate_externals(self) -> tuple[Intent[ExternalDocument], ...]: ...

    @property
    def policies(self) -> tuple[Intent[AccessPolicyDocument], ...]: ...
    @property
    def rollouts(self) -> tuple[Intent[RolloutDocument], ...]: ...
    @property
    def resilience(self) -> tuple[Intent[ResilienceDocument], ...]: ...
    @property
    def identities(self) -> Mapping[str, tuple[ServiceKey, ...]]: ...
    @property
    def namespaces(self) -> tuple[str, ...]: ...
    @property
    def name(self) -> str: ...
    def service(self, ref: str, namespace: str) -> ServiceView | None: ...
    def declared_invalid(self, ref: str, namespace: str) -> bool:
        """Whether a Service document names this service but failed validation: its own
        finding explains it, so references to it are not reported again as undeclared."""
        ...

    def spiffe(self, namespace: str, service_account: str) -> str: ...
    def derived(self, function: Callable[[MeshModel, ServiceKey], T], key: ServiceKey) -> T:
        """`function(self, key)`: a pure function of the model, which a model read inside
        the engine memoises per revision (a value many readers derive from one service)."""
        ...


@dataclass(frozen=True, slots=True)
class MeshSnapshot:
    """The whole resolved mesh of one revision, as a plain value (see `MeshModel`)."""

    mesh: Intent[MeshDocument] | None
    settings: MeshSpec
    meshes: tuple[Intent[MeshDocument], ...]
    services: Mapping[ServiceKey, ServiceView]
    """In declaration order (files by name, documents in file order)."""
    duplicate_services: tuple[Intent[ServiceDocument], ...]
    documents: Mapping[str, tuple[Intent[Any], ...]]
    """Kind -> every valid document of that kind, in tree order."""
    identities: Mapping[str, tuple[ServiceKey, ...]]
    namespaces: tuple[str, ...]
    """The namespaces with a declared service, sorted."""
    invalid_services: frozenset[ServiceKey] = frozenset()
    """Keys that only Service documents failing validation name."""
    externals: Mapping[ServiceKey, ExternalView] = field(default_factory=dict)
    """The declared Externals by key, in tree order."""
    duplicate_externals: tuple[Intent[ExternalDocument], ...] = ()

    @property
    def name(self) -> str:
        return mesh_name(self.mesh)

    @property
    def policies(self) -> tuple[Intent[AccessPolicyDocument], ...]:
        return self.documents.get("AccessPolicy", ())

    @property
    def rollouts(self) -> tuple[Intent[RolloutDocument], ...]:
        return self.documents.get("Rollout", ())

    @property
    def resilience(self) -> tuple[Intent[ResilienceDocument], ...]:
        return self.documents.get("Resilience", ())

    def service(self, ref: str, namespace: str) -> ServiceView | None:
        return self.services.get(ServiceKey.parse(ref, namespace))

    def declared_invalid(self, ref: str, namespace: str) -> bool:
        return ServiceKey.parse(ref, namespace) in self.invalid_services

    def spiffe(self, namespace: str, service_account: str) -> str:
        return spiffe_id(self.settings, namespace, service_account)

    def derived(self, function: Callable[[MeshModel, ServiceKey], T], key: ServiceKey) -> T:
        return function(self, key)


def mesh_name(mesh: Intent[MeshDocument] | None) -> str:
    return mesh.model.metadata.name if mesh else "mesh"


def spiffe_id(settings: MeshSpec, namespace: str, service_account: str) -> str:
    return f"spiffe://{settings.trust_domain}/ns/{namespace}/sa/{service_account}"


def service_key_of(intent: Intent[Any]) -> ServiceKey:
    """The service a document is written for: a Service's own key, else `spec.service`."""
    meta = intent.model.metadata
    if intent.doc.kind == "Service":
        return _parse_key(meta.name, meta.namespace)
    return _parse_key(intent.model.spec.service, meta.namespace)


def service_account_of(intent: Intent[ServiceDocument]) -> str:
    """The account a Service runs as: its `identity`, else its name."""
    return str(intent.model.spec.identity or intent.model.metadata.name)


def selector_of(intent: Intent[ServiceDocument]) -> dict[str, str]:
    """A Service's workload labels: its `selector`, else `{app: <name>}`."""
    spec = intent.model.spec
    return dict(spec.selector) if spec.selector is not None else {"app": intent.model.metadata.name}
