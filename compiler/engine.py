"""The incremental engine: memoised pure queries whose dependencies are recorded as they read.

Every phase after parsing (the effective model, lint, lowering, meaning) is written as
*queries*: module-level functions `query(db, *args)` that compute a value from inputs and
from other queries, reading both only through `db`. The engine records, while a query
runs, every input and query it reads. That record — never a list kept by hand — decides
what a new revision recomputes, in the manner of rustc's query system and Salsa:

* `Engine.set_input` changes an input; the revision advances only when a value differs.
* The first query of a new revision settles it: the readers of each changed input, then
  the readers of whatever changed in turn, are brought up to date lowest first (a memo's
  *height* exceeds its dependencies'), each by re-validating its recorded dependencies in
  the order they were read: if none changed since it was last verified it is *green*,
  else the query runs again (*red*). A query that runs again and returns a value equal to
  its old one keeps the old object and its old `changed_at` (*backdating*), so its own
  readers are not even visited: a revision costs what changed, not the size of the mesh.
* Every memo the settling did not reach is current, and is returned at once; a query
  asked for the first time runs, recording what it reads.

A query must be pure: the same inputs give the same value. It must not keep or mutate
state outside its return value, and must treat values it reads as immutable.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

QueryKey = tuple[Callable[..., Any], tuple[Hashable, ...]]
InputKey = tuple[str, Hashable]


class CycleError(RuntimeError):
    """A query asked for itself, directly or through others: a bug in the queries."""


class _Input:
    __slots__ = ("changed_at", "dependents", "height", "key", "value")

    def __init__(self, key: InputKey, value: Any, changed_at: int) -> None:
        self.key, self.value, self.changed_at = key, value, changed_at
        self.dependents: set[_Memo] = set()
        self.height = 0


class _Memo:
    """One query's memo. Dependencies are the memo and input objects themselves (never
    replaced, only updated), so re-validating one costs no hashing."""

    __slots__ = (
        "changed_at",
        "dependencies",
        "dependents",
        "height",
        "key",
        "running",
        "value",
        "verified_at",
    )

    def __init__(self, key: QueryKey) -> None:
        self.key = key
        self.value: Any = _MISSING
        self.dependencies: tuple[_Memo | _Input, ...] = ()
        """Everything the query read, in the order it first read it."""
        self.dependents: set[_Memo] = set()
        """The memos whose last run read this one (the reverse of `dependencies`)."""
        self.height = 1
        """Greater than every dependency's height (inputs are 0)."""
        self.changed_at = 0
        """The revision in which the value last changed (not merely re-computed)."""
        self.verified_at = 0
        """The last revision in which the value was known to be current."""
        self.running = False


@dataclass(slots=True)
class EngineStats:
    """What the last revision did: figures for tests and benchmarks, never for output."""

    executed: int = 0
    """Queries run (first time or red)."""
    reused: int = 0
    """Queries found green after re-validating their dependencies."""

    def reset(self) -> None:
        self.executed = self.reused = 0


_MISSING: Any = object()
_COLLECTED = -1
"""`verified_at` of a memo `collect` dropped: whoever read it runs again."""
_REMOVED: Any = object()


@dataclass(slots=True)
class Engine:
    """The memo tables of one session (a CLI run, a planner, a reconciler).

    Owned by the caller and passed down explicitly; nothing is cached in module globals
    or on the values queries return."""

    revision: int = 1
    stats: EngineStats = field(default_factory=EngineStats)
    _memos: dict[QueryKey, _Memo] = field(default_factory=dict)
    _inputs: dict[InputKey, _Input] = field(default_factory=dict)
    _frames: list[dict[_Memo | _Input, None]] = field(default_factory=list)
    _dirty: bool = False
    _changed: list[_Input] = field(default_factory=list)
    """Inputs changed since the revision was last settled."""
    _settled: int = 1
    """The last revision whose settling finished: in it, every memo is current."""
    _pending: set[_Memo] = field(default_factory=set)
    _floor: int = 0
    """While settling: the height being settled (every memo below it is final)."""

    # -- inputs ------------------------------------------------------------------------

    def set_input(self, kind: str, name: Hashable, value: Any) -> None:
        """Set input `(kind, name)`. An equal value (identity first) changes nothing."""
        if self._frames:
            raise RuntimeError("inputs cannot change while a query runs")
        key: InputKey = (kind, name)
        slot = self._inputs.get(key)
        if slot is not None and (slot.value is value or _equal(slot.value, value)):
            return
        self._bump()
        if slot is None:
            self._inputs[key] = _Input(key, value, self.revision)
        else:
            slot.value, slot.changed_at = value, self.revision
            self._changed.append(slot)

    def remove_input(self, kind: str, name: Hashable) -> None:
        """Forget input `(kind, name)`; a query still reading it gets a KeyError."""
        slot = self._inputs.pop((kind, name), None)
        if slot is not None:
            self._bump()
            slot.value, slot.changed_at = _REMOVED, self.revision
            self._changed.append(slot)

    def input(self, kind: str, name: Hashable) -> Any:
        """The value of input `(kind, name)`, recorded as read by the running query."""
        slot = self._inputs[(kind, name)]
        if self._frames:
            self._frames[-1][slot] = None
        return slot.value

    def input_or(self, kind: str, name: Hashable, default: Any) -> Any:
        """The value of input `(kind, name)`, or `default` when it is not set (a setter's
        question: never call it inside a query)."""
        slot = self._inputs.get((kind, name))
        return default if slot is None else slot.value

    def mark(self) -> int:
        """The current revision, closing the batch of input changes that made it: a later
        change starts a new revision, so whoever keeps this number can tell whether the
        inputs moved on since."""
        self._dirty = False
        return self.revision

    def _bump(self) -> None:
        if not self._dirty:
            self.revision += 1
            self._dirty = True
            self.stats.reset()

    # -- queries -----------------------------------------------------------------------

    def query(self, function: Callable[..., T], *args: Hashable) -> T:
        """`function(self, *args)`, memoised; recorded as read by the running query."""
        if self._settled != self.revision and not self._frames:
            self._settle()
        key: QueryKey = (function, args)
        memo = self._memos.get(key)
        if memo is None:
            memo = self._memos[key] = _Memo(key)
        if self._frames:
            self._frames[-1][memo] = None
        self._dirty = False
        if memo.verified_at != self.revision:
            if memo.value is not _MISSING and (
                self._settled == self.revision
                or (memo.height < self._floor and memo not in self._pending)
            ):
                memo.verified_at = self.revision  # not reached by the settling: current
            else:
                self._refresh(memo)
        value: T = memo.value
        return value

    def _settle(self) -> None:
        """Bring every memo that read a changed input up to date, lowest first, going on
        to the readers of each memo whose value changed (see the module docstring)."""
        revision = self.revision
        heap: list[tuple[int, int, _Memo]] = []
        pending = self._pending
        count = 0
        for slot in self._changed:
            for memo in slot.dependents:
                if memo not in pending:
                    pending.add(memo)
                    heapq.heappush(heap, (memo.height, count := count + 1, memo))
        self._changed = []
        while heap:
            height, _, memo = heapq.heappop(heap)
            if memo not in pending:
                continue
            if height != memo.height:  # raised since it was queued
                heapq.heappush(heap, (memo.height, count := count + 1, memo))
                continue
            pending.discard(memo)
            self._floor = height
            if memo.verified_at != revision:
                try:
                    self._refresh(memo)
                except Exception:  # e.g. a deleted service's query: asked again, it runs
                    memo.value, memo.changed_at, memo.verified_at = _MISSING, revision, 0
            if memo.changed_at == revision:
                for reader in memo.dependents:
                    if reader not in pending:
                        pending.add(reader)
                        heapq.heappush(heap, (reader.height, count := count + 1, reader))
        self._floor = 0
        self._settled = revision

    def _refresh(self, memo: _Memo) -> None:
        """Bring one memo up to this revision: green when its dependencies are unchanged,
        else run the query again."""
        if memo.value is not _MISSING and self._unchanged_since(memo):
            memo.verified_at = self.revision
            self.stats.reused += 1
        else:
            self._execute(memo)

    def _unchanged_since(self, memo: _Memo) -> bool:
        since, revision, floor = memo.verified_at, self.revision, self._floor
        settled = self._settled == revision
        for dependency in memo.dependencies:
            if type(dependency) is _Memo and dependency.verified_at != revision:
                if dependency.verified_at == _COLLECTED:
                    return False
                if dependency.value is not _MISSING and (
                    settled or (dependency.height < floor and dependency not in self._pending)
                ):
                    pass  # final: below the height being settled, and not queued
                elif dependency.running:
                    raise CycleError(f"query {_name(dependency.key)} depends on itself")
                else:  # still queued, or above the height being settled: check it now
                    self._refresh(dependency)
            if dependency.changed_at > since:
                return False
        return True

    def _execute(self, memo: _Memo) -> None:
        if memo.running:
            raise CycleError(f"query {_name(memo.key)} depends on itself")
        function, args = memo.key
        memo.running = True
        frame: dict[_Memo | _Input, None] = {}
        self._frames.append(frame)
        try:
            value = function(self, *args)
        finally:
            self._frames.pop()
            memo.running = False
        self.stats.executed += 1
        dependencies = tuple(frame)
        if dependencies != memo.dependencies:
            self._relink(memo, dependencies)
        memo.verified_at = self.revision
        old = memo.value
        if old is value or (old is not _MISSING and _equal(old, value)):
            return  # backdated: the old object and its changed_at stay
        memo.value, memo.changed_at = value, self.revision

    def _relink(self, memo: _Memo, dependencies: tuple[_Memo | _Input, ...]) -> None:
        """Record `memo`'s new dependencies, keep the reverse edges and the heights."""
        kept = set(dependencies)
        for old in memo.dependencies:
            if old not in kept:
                old.dependents.discard(memo)
        height = 1
        for dependency in dependencies:
            dependency.dependents.add(memo)
            if dependency.height >= height:
                height = dependency.height + 1
        memo.dependencies = dependencies
        if height > memo.height:
            memo.height = height
            raised = [memo]
            while raised:  # readers must stay above what they read
                below = raised.pop()
                for reader in below.dependents:
                    if reader.height <= below.height:
                        reader.height = below.height + 1
                        raised.append(reader)

    def peek(self, function: Callable[..., Any], *args: Hashable) -> Any:
        """The memoised value of a query if one exists, whatever its revision (for tests:
        never read it to compute anything)."""
        memo = self._memos.get((function, args))
        return None if memo is None or memo.value is _MISSING else memo.value

    def __len__(self) -> int:
        """How many memos the engine holds."""
        return len(self._memos)

    def collect(self) -> int:
        """Drop the memos this revision neither asked for nor needed for one it asked for
        (a deleted service's, say); returns how many were dropped."""
        live: set[_Memo] = set()
        stack = [memo for memo in self._memos.values() if memo.verified_at == self.revision]
        while stack:
            memo = stack.pop()
            if memo in live:
                continue
            live.add(memo)
            stack.extend(d for d in memo.dependencies if type(d) is _Memo and d not in live)
        stale = [key for key, memo in self._memos.items() if memo not in live]
        for key in stale:
            memo = self._memos.pop(key)
            for dependency in memo.dependencies:
                dependency.dependents.discard(memo)
            memo.value, memo.dependencies, memo.verified_at = _MISSING, (), _COLLECTED
        return len(stale)


def _equal(old: Any, new: Any) -> bool:
    """Equality that never raises (a value without a usable `==` counts as changed)."""
    try:
        return bool(old == new)
    except Exception:
        return False


def _name(key: QueryKey) -> str:
    function, args = key
    return f"{getattr(function, '__qualname__', function)}{args!r}"
