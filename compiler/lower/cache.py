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

Checking every service's fingerprint still costs ~9 µs a service (~9 ms for a 1,000-service
mesh). So the cache also keeps the last lowering whole — its model, its groups in key
order and their dependencies. A model re-resolved from exactly that model (its
`ModelChange`, same rollout state) is lowered by patching it: only the touched services
and the services whose rules name a touched service whose account or selector changed (or
an identity such a service runs as, before or after) go through the fingerprint memo;
every other group is the last lowering's, in time proportional to the change.

Cached objects are shared between the `Artifacts` of several compilations: nothing may
mutate an emitted object (every consumer only reads or copies them).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from compiler.artifacts import ObjectKey
from compiler.model.mesh import MeshModel

Keyed = tuple[ObjectKey, dict[str, Any]]
Group = tuple[Keyed, ...]
Services = dict[Any, Any]
"""Service key → the Service intent that defines it, in one lowering's model."""

_NAMESPACE = operator.itemgetter(0)
"""A ServiceKey's namespace (a NamedTuple's first item), read in C."""

KEEP_GENERATIONS = 4
"""Lowerings whose groups stay cached: a plan lowers two sides, a re-plan two more."""

TRAIL = 32
"""Patched lowerings whose changes stay known (see `LoweringCache._changes_since`)."""


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
    group: Group
    basis: Services
    """The services of the last lowering that computed or validated this group."""
    generation: int


@dataclass(frozen=True, slots=True)
class _Changes:
    services: set[Any]
    identities: set[tuple[str, str]]


@dataclass(slots=True)
class _Readers:
    """Who reads what, by position in the key order: the groups naming each service key,
    and the groups naming each identity (built on the first patch, then kept up to date)."""

    services: dict[Any, set[int]]
    identities: dict[tuple[str, str], set[int]]

    @classmethod
    def of(cls, dependencies: list[Dependencies]) -> _Readers:
        readers = cls({}, {})
        for position, found in enumerate(dependencies):
            readers.add(position, found)
        return readers

    def add(self, position: int, found: Dependencies) -> None:
        for key in found.services:
            self.services.setdefault(key, set()).add(position)
        for identity in found.identities:
            self.identities.setdefault(identity, set()).add(position)

    def remove(self, position: int, found: Dependencies) -> None:
        for key in found.services:
            self.services[key].discard(position)
        for identity in found.identities:
            self.identities[identity].discard(position)


@dataclass(slots=True)
class _Lowered:
    """One whole lowering, kept so that the next one can patch it."""

    generation: int
    model: MeshModel
    """Strong: a `ModelChange` holds its previous model weakly."""
    rollout_state: dict[str, int]
    order: list[Any]
    """The service keys in key order (a `ModelChange` keeps the keys and their order)."""
    position: dict[Any, int]
    groups: list[Group]
    """The services' groups, in key order."""
    dependencies: list[Dependencies]
    services: Services
    """The basis this lowering gave its entries (patched, never mutated: entries hold it)."""
    readers: _Readers | None
    namespaces: list[str]
    """The namespaces with services, in order (the mesh-wide group reads them)."""
    base: int | None = None
    """The generation of the lowering this one patched."""
    output: list[Group] | None = None
    """The list `finish` returned (mesh-wide group first), for `assemble`: callers only
    read it."""
    replaced: list[tuple[Group, Group]] = field(default_factory=list)
    """(group of the patched lowering, group of this one) wherever they differ."""


@dataclass(slots=True)
class LoweringCache:
    """fingerprint → a service's lowered group, for the last `KEEP_GENERATIONS` lowerings,
    and the last lowering whole (see the module docstring)."""

    entries: dict[tuple[Any, ...], _Entry] = field(default_factory=dict)
    generation: int = 0
    hits: int = 0
    """Groups reused by the last lowering (a figure for tests and the benchmark)."""
    misses: int = 0
    """Groups computed by the last lowering."""
    patched: bool = False
    """Whether the last lowering patched the one before it (a figure for tests)."""
    namespaces: list[str] = field(default_factory=list)
    """The namespaces with services of the model being lowered, in order: the same as
    the patched lowering's (a `ModelChange` keeps the service keys)."""
    _services: Services = field(default_factory=dict)
    _changes: dict[int, _Changes] = field(default_factory=dict)
    _trail: list[Services] = field(default_factory=list)
    """The services of the last whole lowering and of each patched one since, oldest first
    (kept alive: `_along` finds them by id)."""
    _steps: list[_Changes] = field(default_factory=list)
    """`_steps[i]`: what changed between `_trail[i]` and `_trail[i + 1]`."""
    _along: dict[int, int] = field(default_factory=dict)
    """id of a `_trail` member → its position."""
    _model: MeshModel | None = None
    _rollout_state: dict[str, int] = field(default_factory=dict)
    _base: _Lowered | None = None
    """The lowering being patched (None: lowering every service)."""
    _last: _Lowered | None = None
    _assembled: int | None = None
    """The generation of the lowering whose output `_last_objects` holds, if known."""
    _last_groups: list[Group] = field(default_factory=list)
    _last_objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)

    def start(self, model: MeshModel, rollout_state: Mapping[str, int]) -> list[Any] | None:
        """Begin lowering `model`: the keys of the services to look up or compute, in key
        order — or None for all of them (the caller sorts), when `model` was not
        re-resolved from the model the last lowering lowered, with the same rollout state."""
        self.generation += 1
        self.hits = self.misses = 0
        self._changes = {}
        self._model, self._rollout_state = model, dict(rollout_state)
        last, self._last = self._last, None  # an interrupted lowering leaves nothing to patch
        self._base = last if last is not None and self._continues(last) else None
        self.patched = self._base is not None
        if self._base is None:
            self.namespaces = sorted(set(map(_NAMESPACE, model.services)))
            self._services = {key: view.intent for key, view in model.services.items()}
            self._trail, self._steps = [self._services], []
            self._along = {id(self._services): 0}
            return None
        self.namespaces = self._base.namespaces
        return self._to_relower(self._base)

    def _continues(self, last: _Lowered) -> bool:
        model = self._model
        assert model is not None
        return model.patched_from(last.model) and self._rollout_state == last.rollout_state

    def _to_relower(self, base: _Lowered) -> list[Any]:
        """The touched services, and the services whose rules name a touched service whose
        account or selector changed, or an identity such a service runs as before or after
        (every other group reads only inputs that are the same objects in both models)."""
        model = self._model
        assert model is not None and model.change is not None
        services = dict(base.services)
        moved: set[Any] = set()
        redo: set[int] = set()
        for key in model.change.touched:
            view = model.services.get(key)
            if view is None or key not in base.position:
                continue  # a reference to no service: no group
            redo.add(base.position[key])
            before = services[key]
            services[key] = view.intent
            if before is not view.intent and as_dependency(before) != as_dependency(view.intent):
                moved.add(key)
        identities = {
            (key.namespace, service_account(side[key]))
            for key in moved
            for side in (base.services, services)
        }
        # what `lookup` would compute against the patched lowering's services, known already
        step = _Changes(moved, identities)
        self._changes[id(base.services)] = step
        self._services = services
        self._extend_trail(base.services, step)
        if moved:
            if base.readers is None:
                base.readers = _Readers.of(base.dependencies)
            for key in moved:
                redo.update(base.readers.services.get(key, ()))
            for identity in identities:
                redo.update(base.readers.identities.get(identity, ()))
        return [base.order[position] for position in sorted(redo)]

    def _extend_trail(self, base: Services, step: _Changes) -> None:
        if not self._trail or self._trail[-1] is not base or len(self._trail) >= TRAIL:
            self._trail, self._steps, self._along = [base], [], {id(base): 0}
        self._along[id(self._services)] = len(self._trail)
        self._trail.append(self._services)
        self._steps.append(step)

    def lookup(self, fingerprint: tuple[Any, ...]) -> tuple[Group, Dependencies] | None:
        """The group of a service with this fingerprint and its dependencies, when a recent
        lowering computed it and none of its dependencies changed since."""
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
        return entry.group, entry.dependencies

    def store(
        self,
        fingerprint: tuple[Any, ...],
        inputs: tuple[object, ...],
        dependencies: Dependencies,
        group: Group,
    ) -> None:
        self.entries[fingerprint] = _Entry(
            inputs, dependencies, group, self._services, self.generation
        )

    def finish(
        self, mesh_wide: Group, lowered: Iterable[tuple[Any, Group, Dependencies]]
    ) -> list[Group]:
        """End the lowering `start` began: `lowered` holds (key, group, dependencies) of
        every service `start` named, in key order. All groups: `mesh_wide`, then one per
        service in key order."""
        model, base = self._model, self._base
        assert model is not None
        self._model = self._base = None
        if base is None:
            done = list(lowered)
            current = _Lowered(
                self.generation,
                model,
                self._rollout_state,
                [key for key, _, _ in done],
                {key: position for position, (key, _, _) in enumerate(done)},
                [group for _, group, _ in done],
                [found for _, _, found in done],
                self._services,
                None,
                self.namespaces,
            )
        else:
            current = self._patch(base, model, lowered)
            current.replaced.insert(0, (base.output[0] if base.output else (), mesh_wide))
        current.output = [mesh_wide, *current.groups]
        self._last = current
        self._changes = {}
        if len(self.entries) > 2 * KEEP_GENERATIONS * (len(current.order) + 16):
            self._forget_old(current)
        return current.output

    def _patch(
        self,
        base: _Lowered,
        model: MeshModel,
        lowered: Iterable[tuple[Any, Group, Dependencies]],
    ) -> _Lowered:
        """`base` with the groups of `lowered` put in (every other group is reused). Its
        lists are patched in place: nothing refers to `base` any more."""
        groups, dependencies = base.groups, base.dependencies
        readers, base.readers = base.readers, None  # handed on: only the newest is patched
        replaced: list[tuple[Group, Group]] = []
        count = 0
        for key, group, found in lowered:
            count += 1
            position = base.position[key]
            if readers is not None and found != dependencies[position]:
                readers.remove(position, dependencies[position])
                readers.add(position, found)
            if group is not groups[position]:
                replaced.append((groups[position], group))
            groups[position], dependencies[position] = group, found
        self.hits += len(groups) - count
        return _Lowered(
            self.generation,
            model,
            self._rollout_state,
            base.order,
            base.position,
            groups,
            dependencies,
            self._services,
            readers,
            base.namespaces,
            base=base.generation,
            replaced=replaced,
        )

    def _forget_old(self, current: _Lowered) -> None:
        """Forget groups no recent lowering used, except the last lowering's (a patched
        lowering reuses groups without looking them up, so their generation is stale)."""
        oldest = self.generation - KEEP_GENERATIONS + 1
        live = {id(group) for group in current.groups}
        self.entries = {
            k: e for k, e in self.entries.items() if e.generation >= oldest or id(e.group) in live
        }

    def assemble(self, groups: list[Group]) -> dict[ObjectKey, dict[str, Any]] | None:
        """All objects of `groups` in one mapping: a copy of the cache's own mapping of the
        last assembled groups, patched to hold these (a re-plan shares all but a few
        groups). None when two objects share an identity (the caller reports it).

        When `groups` is the output of a lowering that patched the one assembled last, the
        groups it replaced are known: the work is the change plus one copy."""
        last = self._last
        ours = last if last is not None and groups is last.output else None
        patch = None
        if ours is not None and ours.base is not None and self._assembled == ours.base:
            patch = ours.replaced
        objects, self._last_objects = self._last_objects, {}
        self._assembled, previous, self._last_groups = None, self._last_groups, []
        if patch is not None:
            expected = len(objects) + sum(len(new) - len(old) for old, new in patch)
        else:
            patch = _difference(previous, groups)
            expected = sum(map(len, groups))
        for old, _ in patch:
            for object_key, _ in old:
                del objects[object_key]
        for _, new in patch:
            objects.update(new)
        if len(objects) != expected:
            return None
        self._last_objects, self._last_groups = objects, list(groups)
        self._assembled = ours.generation if ours is not None else None
        return objects.copy()

    def _changes_since(self, basis: Services) -> _Changes:
        """Services added, removed, or whose account or selector changed between `basis`
        and this lowering, and the identities (namespace, account) they run as on either
        side (or a superset of them)."""
        hit = self._changes.get(id(basis))
        position = self._along.get(id(basis))
        if hit is None and position is not None and self._trail[position] is basis:
            # a lowering patched since: what changed at each step since (a superset when
            # a service changed back, which only costs a recomputed group)
            hit = _Changes(set(), set())
            for step in self._steps[position:]:
                hit.services.update(step.services)
                hit.identities.update(step.identities)
            self._changes[id(basis)] = hit
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


def _difference(before: list[Group], after: list[Group]) -> list[tuple[Group, Group]]:
    """(group gone, ()) and ((), group new) pairs, groups told apart by identity."""
    old = {id(group): group for group in before}
    new = {id(group): group for group in after}
    gone: list[tuple[Group, Group]] = [(g, ()) for key, g in old.items() if key not in new]
    return gone + [((), g) for key, g in new.items() if key not in old]


def as_dependency(intent: Any) -> tuple[str, Any]:
    """What another service's objects read of a Service: its account and its selector
    (its key is the dependency's name). A file rewritten around an unchanged Service
    document leaves its dependents' objects alone."""
    return service_account(intent), intent.model.spec.selector


def service_account(intent: Any) -> str:
    """The account a Service intent runs as (the model's rule: identity, else its name)."""
    return str(intent.model.spec.identity or intent.model.metadata.name)
