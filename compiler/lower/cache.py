"""Memoised lowering: each service's emitted objects, reused while its inputs are unchanged.

A backend splits its output into groups (one per service). A group is a function of

* the service's own inputs — its Service, AccessPolicy, Rollout and Resilience intents,
  the mesh document and the rollout state of its rollouts — which form the group's
  fingerprint (intents by identity: a `FileCache` hands out the same objects for an
  unchanged file, and each entry keeps its inputs alive so an id cannot be reused);
* the services its rules name (by key: it reads their account and selector) and the
  identities they name (namespace and service account: it reads the selectors of the
  services running as them), which the entry records as its dependencies.

`LoweringCache` keeps, per fingerprint, the group of the last lowering that computed or
validated it, with the services (key → Service intent) that lowering saw. A later
lowering reuses the group when no dependency is among the services that changed since
then, so a re-plan after a one-file change lowers the one or two services the file
touches (and the services whose rules name them) and hands the rest back as the very same
objects, which also lets the resource diff skip them by identity.

Cached objects are shared between the `Artifacts` of several compilations: nothing may
mutate an emitted object (every consumer only reads or copies them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compiler.artifacts import ObjectKey

Keyed = tuple[ObjectKey, dict[str, Any]]
Services = dict[Any, Any]
"""Service key → the Service intent that defines it, in one lowering's model."""

KEEP_GENERATIONS = 4
"""Lowerings whose groups stay cached: a plan lowers two sides, a re-plan two more."""


@dataclass(frozen=True, slots=True)
class Dependencies:
    """What a group reads beyond its own inputs: named services and named identities."""

    services: frozenset[Any]
    identities: frozenset[tuple[str, str]]


@dataclass(slots=True)
class _Entry:
    inputs: tuple[object, ...]
    """Kept alive so that the ids in the fingerprint cannot be reused by other objects."""
    dependencies: Dependencies
    group: tuple[Keyed, ...]
    basis: Services
    """The services of the last lowering that computed or validated this group."""
    generation: int


@dataclass(frozen=True, slots=True)
class _Changes:
    services: set[Any]
    identities: set[tuple[str, str]]


@dataclass(slots=True)
class LoweringCache:
    """fingerprint → a service's lowered group, for the last `KEEP_GENERATIONS` lowerings."""

    entries: dict[tuple[Any, ...], _Entry] = field(default_factory=dict)
    generation: int = 0
    hits: int = 0
    """Groups reused by the last lowering (a figure for tests and the benchmark)."""
    misses: int = 0
    """Groups computed by the last lowering."""
    _services: Services = field(default_factory=dict)
    _last_groups: dict[int, tuple[Keyed, ...]] = field(default_factory=dict)
    _last_objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    _changes: dict[int, _Changes] = field(default_factory=dict)

    def start(self, services: Services) -> None:
        """Begin a lowering of a model with these services (key → Service intent)."""
        self.generation += 1
        self.hits = self.misses = 0
        self._services = services
        self._changes = {}

    def lookup(self, fingerprint: tuple[Any, ...]) -> tuple[Keyed, ...] | None:
        entry = self.entries.get(fingerprint)
        if entry is not None and entry.basis is not self._services:
            changes = self._changes.get(id(entry.basis)) or self._changes_since(entry.basis)
            deps = entry.dependencies
            if not (
                changes.services.isdisjoint(deps.services)
                and changes.identities.isdisjoint(deps.identities)
            ):
                entry = None
        if entry is None:
            self.misses += 1
            return None
        entry.basis = self._services
        entry.generation = self.generation
        self.hits += 1
        return entry.group

    def store(
        self,
        fingerprint: tuple[Any, ...],
        inputs: tuple[object, ...],
        dependencies: Dependencies,
        group: tuple[Keyed, ...],
    ) -> None:
        self.entries[fingerprint] = _Entry(
            inputs, dependencies, group, self._services, self.generation
        )

    def assemble(self, groups: list[tuple[Keyed, ...]]) -> dict[ObjectKey, dict[str, Any]] | None:
        """All objects of `groups` in one mapping: the last assembled mapping, copied,
        minus the groups no longer present plus the new ones (a re-plan shares all but a
        few groups). None when two objects share an identity (the caller reports it)."""
        objects = dict(self._last_objects)
        current = {id(group): group for group in groups}
        for key, group in self._last_groups.items():
            if key not in current:
                for object_key, _ in group:
                    del objects[object_key]
        for key, group in current.items():
            if key not in self._last_groups:
                objects.update(group)
        if len(objects) != sum(map(len, groups)):
            self._last_groups, self._last_objects = {}, {}
            return None
        self._last_groups, self._last_objects = current, dict(objects)
        return objects

    def finish(self, services: int) -> None:
        """Forget groups no recent lowering used, once the cache outgrows a few meshes."""
        self._changes = {}
        if len(self.entries) <= 2 * KEEP_GENERATIONS * (services + 16):
            return
        oldest = self.generation - KEEP_GENERATIONS + 1
        self.entries = {k: e for k, e in self.entries.items() if e.generation >= oldest}

    def _changes_since(self, basis: Services) -> _Changes:
        """Services added, removed, or whose account or selector changed between `basis`
        and this lowering, and the identities (namespace, account) they run as on either
        side."""
        hit = self._changes.get(id(basis))
        if hit is None:
            now = self._services
            changed = {
                key
                for key, intent in now.items()
                if (before := basis.get(key)) is not intent
                and (before is None or as_dependency(before) != as_dependency(intent))
            }
            changed.update(key for key in basis if key not in now)
            identities = {
                (key.namespace, service_account(side[key]))
                for key in changed
                for side in (basis, now)
                if key in side
            }
            hit = _Changes(changed, identities)
            self._changes[id(basis)] = hit  # basis is alive (an entry holds it) meanwhile
        return hit


def as_dependency(intent: Any) -> tuple[str, Any]:
    """What another service's objects read of a Service: its account and its selector
    (its key is the dependency's name). A file rewritten around an unchanged Service
    document leaves its dependents' objects alone."""
    return service_account(intent), intent.model.spec.selector


def service_account(intent: Any) -> str:
    """The account a Service intent runs as (the model's rule: identity, else its name)."""
    return str(intent.model.spec.identity or intent.model.metadata.name)
