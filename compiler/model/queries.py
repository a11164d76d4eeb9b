"""The effective model as engine queries, and `MeshReader`, the model seen from inside one.

Inputs (set by `compiler.api` for each compile): `("file", path)` → the file's
`FileResult`, `("tree", "files")` → every path in name order, `("now", None)`, and
`("rollout", None)` → the rollout state. Everything else is derived here, a little at a
time, so that a one-file change re-validates the mesh-wide indexes once and then re-runs
only the per-service queries whose inputs really changed.

Every later phase reads the model through a `MeshReader`: a `MeshModel` whose every
read is an engine query, so the engine records which services and settings a lint rule,
an emitter or a meaning piece looked at, and no phase keeps a list of what it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from compiler.engine import Engine
from compiler.kinds import ATTACHED_KINDS, KEYED_KINDS
from compiler.kinds.access_policy.model import AccessPolicyDocument
from compiler.kinds.external.model import ExternalDocument
from compiler.kinds.mesh.model import MeshDocument, MeshSpec
from compiler.kinds.resilience.model import ResilienceDocument
from compiler.kinds.rollout.model import RolloutDocument
from compiler.kinds.service.model import ServiceDocument
from compiler.model.mesh import (
    ExternalView,
    MeshModel,
    MeshSnapshot,
    ServiceKey,
    ServiceView,
    mesh_name,
    selector_of,
    service_account_of,
    service_key_of,
    spiffe_id,
)
from compiler.validate import Intent

T = TypeVar("T")
_NO_ATTACHMENTS: Mapping[str, tuple[Intent[Any], ...]] = {}


# -- documents ---------------------------------------------------------------------------


Placed = tuple[str, ServiceKey | None, Intent[Any]]
"""A document with its kind and the service it is written for (None: a Mesh or an
External, which are written for no service)."""


def file_documents(db: Engine, path: str) -> tuple[Placed, ...]:
    """One file's valid documents, each with its kind and service key (computed once per
    file version, so the mesh-wide indexes below never re-derive them)."""
    return tuple(
        (
            intent.doc.kind,
            service_key_of(intent) if intent.doc.kind in KEYED_KINDS else None,
            intent,
        )
        for intent in db.input("file", path).intents
    )


def all_documents(db: Engine) -> tuple[Placed, ...]:
    """Every valid document of the tree, files by name, documents in file order."""
    out: list[Placed] = []
    for path in db.input("tree", "files"):
        out.extend(db.query(file_documents, path))
    return tuple(out)


def documents_of_kind(db: Engine, kind: str) -> tuple[Intent[Any], ...]:
    return tuple(intent for found, _, intent in db.query(all_documents) if found == kind)


def mesh_document(db: Engine) -> Intent[MeshDocument] | None:
    """The first Mesh document (lint reports any other)."""
    meshes = db.query(documents_of_kind, "Mesh")
    return meshes[0] if meshes else None


def settings(db: Engine) -> MeshSpec:
    mesh = db.query(mesh_document)
    return mesh.model.spec if mesh is not None else MeshSpec()


def trust_domain(db: Engine) -> str:
    return db.query(settings).trust_domain


# -- services ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Declarations:
    """Each service key's first Service document, in tree order, and the later ones."""

    first: Mapping[ServiceKey, Intent[ServiceDocument]]
    duplicates: tuple[Intent[ServiceDocument], ...]


def declarations(db: Engine) -> Declarations:
    first: dict[ServiceKey, Intent[ServiceDocument]] = {}
    duplicates: list[Intent[ServiceDocument]] = []
    for kind, key, intent in db.query(all_documents):
        if kind != "Service" or key is None:
            continue
        if key in first:
            duplicates.append(intent)
        else:
            first[key] = intent
    return Declarations(first, tuple(duplicates))


def key_files(db: Engine) -> Mapping[ServiceKey, tuple[str, ...]]:
    """Service key → the files holding a document written for it (its Service or an
    attached document), in file order; keys in the order first named. It changes only
    when a file starts or stops naming a key, so an edit inside a file reaches the
    per-service queries through that file's documents alone."""
    found: dict[ServiceKey, list[str]] = {}
    for path in db.input("tree", "files"):
        for _, key, _ in db.query(file_documents, path):
            if key is not None:
                paths = found.setdefault(key, [])
                if not paths or paths[-1] != path:
                    paths.append(path)
    return {key: tuple(paths) for key, paths in found.items()}


def files_of(db: Engine, key: ServiceKey) -> tuple[str, ...]:
    return db.query(key_files).get(key, ())


def declaration(db: Engine, key: ServiceKey) -> Intent[ServiceDocument] | None:
    """The first Service document declaring `key` (files by name, as `declarations`)."""
    for path in db.query(files_of, key):
        for kind, found, intent in db.query(file_documents, path):
            if kind == "Service" and found == key:
                return intent
    return None


def service_keys(db: Engine) -> tuple[ServiceKey, ...]:
    """The declared services, in declaration order."""
    return tuple(db.query(declarations).first)


def ordered_keys(db: Engine) -> tuple[ServiceKey, ...]:
    """The declared services in key order (the order backends emit them in)."""
    return tuple(sorted(db.query(service_keys)))


def duplicate_services(db: Engine) -> tuple[Intent[ServiceDocument], ...]:
    return db.query(declarations).duplicates


def attachments(db: Engine, key: ServiceKey) -> Mapping[str, tuple[Intent[Any], ...]]:
    """Kind → the attached documents written for `key`, in tree order."""
    found: dict[str, list[Intent[Any]]] = {}
    for path in db.query(files_of, key):
        for kind, named, intent in db.query(file_documents, path):
            if named == key and kind in ATTACHED_KINDS:
                found.setdefault(kind, []).append(intent)
    if not found:
        return _NO_ATTACHMENTS
    return {kind: tuple(intents) for kind, intents in found.items()}


def service_view(db: Engine, key: ServiceKey) -> ServiceView | None:
    """The view of a declared service; None for a key no Service declares."""
    intent = db.query(declaration, key)
    if intent is None:
        return None
    account = service_account_of(intent)
    namespace = key.namespace
    return ServiceView(
        key=key,
        intent=intent,
        selector=selector_of(intent),
        service_account=account,
        spiffe_id=f"spiffe://{db.query(trust_domain)}/ns/{namespace}/sa/{account}",
        attached=db.query(attachments, key),
        calls=tuple(ServiceKey.parse(ref, namespace) for ref in intent.model.spec.calls),
    )


def identities(db: Engine) -> Mapping[str, tuple[ServiceKey, ...]]:
    """SPIFFE ID → the declared services running as it, in declaration order."""
    domain = db.query(trust_domain)
    found: dict[str, list[ServiceKey]] = {}
    for key, intent in db.query(declarations).first.items():
        spiffe = f"spiffe://{domain}/ns/{key.namespace}/sa/{service_account_of(intent)}"
        found.setdefault(spiffe, []).append(key)
    return {spiffe: tuple(keys) for spiffe, keys in found.items()}


def invalid_services(db: Engine) -> frozenset[ServiceKey]:
    """Keys named only by Service documents that failed validation (their findings say
    why; references to them are not reported again as undeclared)."""
    found: set[ServiceKey] = set()
    for path in db.input("tree", "files"):
        result = db.input("file", path)
        valid = {intent.doc.index for intent in result.intents}
        for doc in result.documents:
            if doc.kind == "Service" and doc.index not in valid:
                meta = doc.data.get("metadata")
                name = meta.get("name") if isinstance(meta, dict) else None
                namespace = meta.get("namespace", "default") if isinstance(meta, dict) else None
                if isinstance(name, str) and isinstance(namespace, str):
                    found.add(ServiceKey(namespace, name))
    return frozenset(found) - set(db.query(service_keys))


def declared_invalid(db: Engine, key: ServiceKey) -> bool:
    return key in db.query(invalid_services)


@dataclass(frozen=True, slots=True)
class ExternalDeclarations:
    """Each External key's first document (as a view), in tree order, and the later ones."""

    first: Mapping[ServiceKey, ExternalView]
    duplicates: tuple[Intent[ExternalDocument], ...]


def external_declarations(db: Engine) -> ExternalDeclarations:
    first: dict[ServiceKey, ExternalView] = {}
    duplicates: list[Intent[ExternalDocument]] = []
    for intent in db.query(documents_of_kind, "External"):
        meta = intent.model.metadata
        key = ServiceKey.parse(meta.name, meta.namespace)
        if key in first:
            duplicates.append(intent)
        else:
            first[key] = ExternalView(key, intent)
    return ExternalDeclarations(first, tuple(duplicates))


def externals(db: Engine) -> Mapping[ServiceKey, ExternalView]:
    return db.query(external_declarations).first


def external_view(db: Engine, key: ServiceKey) -> ExternalView | None:
    """The declared External `key` (a query of its own: its readers are re-run only when
    this External changes, not when another one does)."""
    return db.query(externals).get(key)


def namespaces(db: Engine) -> tuple[str, ...]:
    return tuple(sorted({key.namespace for key in db.query(service_keys)}))


def snapshot(db: Engine) -> MeshSnapshot:
    """The whole model of this revision as a plain value."""
    views = {key: db.query(service_view, key) for key in db.query(service_keys)}
    return MeshSnapshot(
        mesh=db.query(mesh_document),
        settings=db.query(settings),
        meshes=db.query(documents_of_kind, "Mesh"),
        services={key: view for key, view in views.items() if view is not None},
        duplicate_services=db.query(duplicate_services),
        documents={kind: db.query(documents_of_kind, kind) for kind in ATTACHED_KINDS},
        identities=db.query(identities),
        namespaces=db.query(namespaces),
        invalid_services=db.query(invalid_services),
        externals=db.query(externals),
        duplicate_externals=db.query(external_declarations).duplicates,
    )


# -- compilation inputs ------------------------------------------------------------------


def now(db: Engine) -> datetime:
    value: datetime = db.input("now", None)
    return value


def rollout_step(db: Engine, name: str) -> int | None:
    """The step the rollout state records for Rollout `namespace/name` (None: none)."""
    step: int | None = db.input("rollout", None).get(name)
    return step


# -- the model as queries see it -----------------------------------------------------------


class _Services(Mapping[ServiceKey, ServiceView]):
    """The declared services; a lookup records a read of that one service."""

    __slots__ = ("_db",)

    def __init__(self, db: Engine) -> None:
        self._db = db

    def get(self, key: ServiceKey, default: Any = None) -> Any:
        view = self._db.query(service_view, key)
        return default if view is None else view

    def __getitem__(self, key: ServiceKey) -> ServiceView:
        view = self._db.query(service_view, key)
        if view is None:
            raise KeyError(key)
        return view

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and self._db.query(service_view, key) is not None

    def __iter__(self) -> Iterator[ServiceKey]:
        return iter(self._db.query(service_keys))

    def __len__(self) -> int:
        return len(self._db.query(service_keys))

    def values(self) -> Any:
        return self._db.query(snapshot).services.values()

    def items(self) -> Any:
        return self._db.query(snapshot).services.items()


class _Externals(Mapping[ServiceKey, ExternalView]):
    """The declared Externals; a lookup records a read of that one External."""

    __slots__ = ("_db",)

    def __init__(self, db: Engine) -> None:
        self._db = db

    def get(self, key: ServiceKey, default: Any = None) -> Any:
        view = self._db.query(external_view, key)
        return default if view is None else view

    def __getitem__(self, key: ServiceKey) -> ExternalView:
        view = self._db.query(external_view, key)
        if view is None:
            raise KeyError(key)
        return view

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and self._db.query(external_view, key) is not None

    def __iter__(self) -> Iterator[ServiceKey]:
        return iter(self._db.query(externals))

    def __len__(self) -> int:
        return len(self._db.query(externals))


class MeshReader:
    """A `MeshModel` read through the engine: every read is recorded by the running query.
    Reading every service at once (`services.values()`) depends on all of them."""

    __slots__ = ("_db", "externals", "services")

    def __init__(self, db: Engine) -> None:
        self._db = db
        self.services: Mapping[ServiceKey, ServiceView] = _Services(db)
        self.externals: Mapping[ServiceKey, ExternalView] = _Externals(db)

    @property
    def mesh(self) -> Intent[MeshDocument] | None:
        return self._db.query(mesh_document)

    @property
    def settings(self) -> MeshSpec:
        return self._db.query(settings)

    @property
    def meshes(self) -> tuple[Intent[MeshDocument], ...]:
        return self._db.query(documents_of_kind, "Mesh")

    @property
    def duplicate_services(self) -> tuple[Intent[ServiceDocument], ...]:
        return self._db.query(duplicate_services)

    @property
    def duplicate_externals(self) -> tuple[Intent[ExternalDocument], ...]:
        return self._db.query(external_declarations).duplicates

    @property
    def policies(self) -> tuple[Intent[AccessPolicyDocument], ...]:
        return self._db.query(documents_of_kind, "AccessPolicy")

    @property
    def rollouts(self) -> tuple[Intent[RolloutDocument], ...]:
        return self._db.query(documents_of_kind, "Rollout")

    @property
    def resilience(self) -> tuple[Intent[ResilienceDocument], ...]:
        return self._db.query(documents_of_kind, "Resilience")

    @property
    def identities(self) -> Mapping[str, tuple[ServiceKey, ...]]:
        return self._db.query(identities)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return self._db.query(namespaces)

    @property
    def name(self) -> str:
        return mesh_name(self.mesh)

    def service(self, ref: str, namespace: str) -> ServiceView | None:
        return self._db.query(service_view, ServiceKey.parse(ref, namespace))

    def declared_invalid(self, ref: str, namespace: str) -> bool:
        return self._db.query(declared_invalid, ServiceKey.parse(ref, namespace))

    def spiffe(self, namespace: str, service_account: str) -> str:
        return f"spiffe://{self._db.query(trust_domain)}/ns/{namespace}/sa/{service_account}"

    def derived(self, function: Callable[[MeshModel, ServiceKey], T], key: ServiceKey) -> T:
        value: T = self._db.query(derived, function, key)
        return value


def derived(db: Engine, function: Callable[[MeshModel, ServiceKey], T], key: ServiceKey) -> T:
    """`function(model, key)` as a query of its own (`MeshModel.derived`)."""
    return function(MeshReader(db), key)


class RolloutSteps(Mapping[str, int]):
    """The rollout state as queries see it: a lookup records a read of that one Rollout."""

    __slots__ = ("_db",)

    def __init__(self, db: Engine) -> None:
        self._db = db

    def get(self, name: str, default: Any = None) -> Any:
        step = self._db.query(rollout_step, name)
        return default if step is None else step

    def __getitem__(self, name: str) -> int:
        step = self._db.query(rollout_step, name)
        if step is None:
            raise KeyError(name)
        return step

    def __iter__(self) -> Iterator[str]:
        return iter(self._db.input("rollout", None))

    def __len__(self) -> int:
        return len(self._db.input("rollout", None))


__all__ = ["MeshReader", "RolloutSteps", "snapshot", "spiffe_id"]
