"""Retry amplification along declared call chains (the analysis behind MC603).

When a call into service B may be tried `attempts_B + 1` times and B's call into C
`attempts_C + 1` times, one request into B can reach C (attempts_B+1)·(attempts_C+1) times.
Only services with retries multiply, and with a budget of ~10 a chain that exceeds it has
just a handful of them, so the search runs over the *retrying* services only: first the
links "retrying service r reaches retrying service r' through services without retries"
(one breadth-first walk per retrying service), then a depth-first walk over those links
that stops as soon as the product exceeds the budget. Cost is O(retrying × calls) plus a
small search, not the number of paths in the call graph (exponential in a large mesh).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from compiler.kinds.resilience.model import ResilienceDocument
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.validate import Intent

MAX_SEARCH_STEPS = 100_000
"""Bound on the depth-first walk (it only matters with very large budgets)."""


ISTIO_DEFAULT_ATTEMPTS = 2
"""Istio's retry policy for an HTTP route that sets none: 2 retries (on connect-failure,
refused-stream, unavailable, cancelled, retriable-status-codes), so 3 tries per call."""


@dataclass(frozen=True, slots=True)
class RetryHop:
    """The most tries a call into one service may make, and the document that says so
    (None when it is Istio's default policy on an HTTP port without declared retries)."""

    factor: int
    intent: Intent[ResilienceDocument] | None

    @property
    def is_default(self) -> bool:
        return self.intent is None


def retry_hops(model: MeshModel) -> dict[ServiceKey, RetryHop]:
    """Per service whose calls are retried, the largest number of tries a call may make.

    Declared retries count where they reach an HTTP port (the lowering gives TCP ports no
    retries); an HTTP port no Resilience gives `retries` gets Istio's default policy
    (`attempts: 0` turns it off)."""
    hops: dict[ServiceKey, RetryHop] = {}
    for key in sorted(model.services):
        hop = service_hop(model.services[key])
        if hop is not None:
            hops[key] = hop
    return hops


def service_hop(view: ServiceView) -> RetryHop | None:
    """The most tries a call into this one service may make (None: calls are not retried)."""
    http_ports = {p.port for p in view.spec.ports if p.protocol != "tcp"}
    covered: set[int] = set()
    best: RetryHop | None = None
    for intent in view.resilience:
        port = intent.model.spec.port
        scope = http_ports if port is None else http_ports & {port}
        retries = intent.model.spec.retries
        if retries is None or not scope:
            continue
        covered |= scope
        if retries.attempts <= 0:
            continue
        if best is None or retries.attempts + 1 > best.factor:
            best = RetryHop(retries.attempts + 1, intent)
    if http_ports - covered and (best is None or best.factor < ISTIO_DEFAULT_ATTEMPTS + 1):
        best = RetryHop(ISTIO_DEFAULT_ATTEMPTS + 1, None)
    return best


@dataclass(frozen=True, slots=True)
class _Row:
    """One service's part of the analysis: its key, its declared calls and its hop factor
    (0: not retried) -- everything `worst_chains` reads of it -- and the hop itself."""

    shape: tuple[ServiceKey, tuple[ServiceKey, ...], int]
    hop: RetryHop | None
    sources: tuple[Intent[Any], ...]
    """The Service and Resilience intents the row was derived from (kept alive, so the
    `id()` keys of `RetryMemo.rows` stay unique while the row is stored)."""


@dataclass(slots=True)
class RetryMemo:
    """MC603's analysis kept across compiles of similar trees (a lint or plan session).

    A service's row is reused while its Service and Resilience intents are the same
    objects (a `FileCache` hands out the same ones for unchanged files); the chains are
    reused while every row's shape is equal, in the same order, under the same budget.
    Both are pure functions of what they are keyed by, so reuse cannot change a finding."""

    rows: dict[int, _Row] = field(default_factory=dict)
    analyses: list[
        tuple[int, list[tuple[Any, ...]], dict[ServiceKey, tuple[AmplifiedChain, int]]]
    ] = field(default_factory=list)
    last: _Analysed | None = None
    """The last model analysed and its rows: a model re-resolved from it (`ModelChange`)
    patches the rows of its touched services only."""

    def analyse(
        self, model: MeshModel, budget: int
    ) -> tuple[dict[ServiceKey, RetryHop], dict[ServiceKey, tuple[AmplifiedChain, int]]]:
        """`retry_hops(model)` and `worst_chains(model, hops, budget)`, reusing what it can."""
        rows = self._changed_rows(model)
        if rows is not None and self.last is not None:
            self.last = _Analysed(model, rows, self.last.index)  # same keys, same positions
        else:
            rows = [self._row(view) for view in model.services.values()]
            if len(self.rows) > 4 * len(rows) + 64:
                live = {id(view.intent) for view in model.services.values()}
                self.rows = {ident: row for ident, row in self.rows.items() if ident in live}
            self.last = _Analysed(model, rows)
        hops = {row.shape[0]: row.hop for row in rows if row.hop is not None}
        shapes = [row.shape for row in rows]
        for known_budget, known_shapes, worst in self.analyses:
            if known_budget == budget and known_shapes == shapes:
                return hops, worst
        worst = worst_chains(model, hops, budget)
        self.analyses = [(budget, shapes, worst), *self.analyses[:1]]
        return hops, worst

    def _changed_rows(self, model: MeshModel) -> list[_Row] | None:
        """The last model's rows with the touched services' rows redone, when `model` was
        re-resolved from it (same services in the same order, so the same row positions)."""
        change, last = model.change, self.last
        if change is None or last is None or not model.patched_from(last.model):
            return None
        rows = list(last.rows)
        position = last.positions()
        for key in change.touched:
            index = position.get(key)
            if index is not None:
                rows[index] = self._row(model.services[key])
        return rows

    def _row(self, view: ServiceView) -> _Row:
        row = self.rows.get(id(view.intent))
        sources: tuple[Intent[Any], ...] = (view.intent, *view.resilience)
        if (
            row is None
            or len(row.sources) != len(sources)
            or not all(a is b for a, b in zip(row.sources, sources, strict=True))
        ):
            hop = service_hop(view)
            shape = (view.key, tuple(view.calls), hop.factor if hop is not None else 0)
            row = self.rows[id(view.intent)] = _Row(shape, hop, sources)
        return row


@dataclass(slots=True)
class _Analysed:
    model: MeshModel
    rows: list[_Row]
    index: dict[ServiceKey, int] | None = None

    def positions(self) -> dict[ServiceKey, int]:
        if self.index is None:
            self.index = {row.shape[0]: i for i, row in enumerate(self.rows)}
        return self.index


@dataclass(frozen=True, slots=True)
class AmplifiedChain:
    """A call chain `caller → ... → last` whose retrying hops multiply beyond the budget."""

    path: tuple[ServiceKey, ...]
    factors: tuple[int, ...]

    @property
    def product(self) -> int:
        return math.prod(self.factors)


@dataclass(frozen=True, slots=True)
class CallGraph:
    """The declared calls with services numbered in sorted order (ints hash fast)."""

    keys: tuple[ServiceKey, ...]
    calls: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, model: MeshModel) -> CallGraph:
        keys = tuple(sorted(model.services))
        index = {key: i for i, key in enumerate(keys)}
        calls = tuple(
            tuple(index[c] for c in model.services[key].calls if c in index) for key in keys
        )
        return cls(keys, calls)

    def callers(self) -> list[list[int]]:
        found: list[list[int]] = [[] for _ in self.keys]
        for caller, callees in enumerate(self.calls):
            for callee in callees:
                if callee != caller and (not found[callee] or found[callee][-1] != caller):
                    found[callee].append(caller)
        return found


def retry_links(graph: CallGraph, factors: dict[int, int]) -> dict[int, dict[int, tuple[int, ...]]]:
    """For each retrying service, the retrying services it reaches through services without
    retries, with the shortest such path (excluding the start, ending at the target)."""
    links: dict[int, dict[int, tuple[int, ...]]] = {}
    for start in sorted(factors):
        found: dict[int, tuple[int, ...]] = {}
        seen = {start}
        queue: deque[tuple[int, tuple[int, ...]]] = deque([(start, ())])
        while queue:
            node, path = queue.popleft()
            for callee in graph.calls[node]:
                if callee in seen:
                    continue
                seen.add(callee)
                if callee in factors:
                    found[callee] = (*path, callee)
                else:
                    queue.append((callee, (*path, callee)))
        links[start] = found
    return links


_Frame = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]
"""Search state: retrying hops so far, the full path after the caller, factors, product."""


def worst_chains(
    model: MeshModel, hops: dict[ServiceKey, RetryHop], budget: int
) -> dict[ServiceKey, tuple[AmplifiedChain, int]]:
    """Per last hop, the worst shortest chain over `budget` and how many such chains end there.

    A chain starts at a caller of its first retrying service and ends at the hop that
    takes the product over the budget. It counts only if dropping the first factor brings
    it within budget, so an excess is counted at the shortest chain that causes it, not
    again for every caller further upstream. A service appears at most once among a
    chain's retrying hops and the caller is not on the chain (cycles end the walk). The
    worst chain has the largest product, then the fewest services, then the first found.
    """
    graph = CallGraph.of(model)
    index = {key: i for i, key in enumerate(graph.keys)}
    factors = {index[key]: hop.factor for key, hop in hops.items()}
    links = retry_links(graph, factors)
    callers = graph.callers()
    best: dict[int, tuple[tuple[int, int], tuple[int, ...], tuple[int, ...]]] = {}
    counts: dict[int, int] = {}
    steps = 0
    for first in sorted(factors):
        stack: list[_Frame] = [((first,), (first,), (factors[first],), factors[first])]
        while stack and steps <= MAX_SEARCH_STEPS:
            retrying, path, chain_factors, product = stack.pop()
            if product > budget:
                if product // chain_factors[0] <= budget:
                    eligible = [c for c in callers[first] if c not in path]
                    if eligible:
                        last = path[-1]
                        counts[last] = counts.get(last, 0) + len(eligible)
                        rank = (-product, len(path))
                        if last not in best or rank < best[last][0]:
                            best[last] = (rank, (eligible[0], *path), chain_factors)
                continue
            for target, via in reversed(links[retrying[-1]].items()):
                steps += 1
                if target not in retrying:
                    factor = factors[target]
                    stack.append(
                        (
                            (*retrying, target),
                            (*path, *via),
                            (*chain_factors, factor),
                            product * factor,
                        )
                    )
    return {
        graph.keys[last]: (
            AmplifiedChain(tuple(graph.keys[i] for i in path), chain_factors),
            counts[last],
        )
        for last, (_, path, chain_factors) in best.items()
    }
