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
from dataclasses import dataclass, replace

from compiler.kinds.resilience.model import (
    ISTIO_DEFAULT_ATTEMPTS,
    RETRY_AFTER_UPSTREAM,
    ResilienceDocument,
)
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.validate import Intent

MAX_SEARCH_STEPS = 100_000
"""Bound on the depth-first walk (it only matters with very large budgets)."""


@dataclass(frozen=True, slots=True)
class RetryHop:
    """The most tries a call into one service may make, and the document that says so
    (None when it is Istio's default policy on an HTTP port without declared retries).

    `compound_factor` is the most tries that a *failed answer* of the service can cause:
    only retry conditions that fire on what the service answered (5xx, gateway errors,
    resets, gRPC statuses...) retry when something further down the chain failed; a
    policy retrying only on `connect-failure`/`refused-stream` multiplies the failures of
    this service alone, so it counts at the end of a chain and as 1 inside one."""

    factor: int
    intent: Intent[ResilienceDocument] | None
    compound_factor: int = 1

    @property
    def is_default(self) -> bool:
        return self.intent is None


def service_hop(view: ServiceView) -> RetryHop | None:
    """The most tries a call into this one service may make (None: calls are not retried)."""
    http_ports = {p.port for p in view.spec.ports if p.protocol != "tcp"}
    covered: set[int] = set()
    best: RetryHop | None = None
    compound = 1
    for intent in view.resilience:
        port = intent.model.spec.port
        scope = http_ports if port is None else http_ports & {port}
        retries = intent.model.spec.retries
        if retries is None or not scope:
            continue
        covered |= scope
        if retries.attempts <= 0:
            continue
        tries = retries.attempts + 1
        if compounds(retries.retry_on):
            compound = max(compound, tries)
        if best is None or tries > best.factor:
            best = RetryHop(tries, intent)
    default = ISTIO_DEFAULT_ATTEMPTS + 1
    if http_ports - covered:
        compound = max(compound, default)  # Istio's default retries 503 and gRPC statuses
        if best is None or best.factor < default:
            best = RetryHop(default, None)
    return None if best is None else replace(best, compound_factor=compound)


def compounds(retry_on: list[str]) -> bool:
    """Whether retrying on `retry_on` repeats calls whose callee answered with a failure
    (an empty list is Istio's default, which retries 503 and gRPC `unavailable`)."""
    return not retry_on or any(map(retries_failed_answer, retry_on))


def retries_failed_answer(token: str) -> bool:
    """Whether a `retryOn` condition fires on what the callee answered (a status code,
    `5xx`, `gateway-error`, a gRPC status...), not on failing to reach it."""
    return token in RETRY_AFTER_UPSTREAM or token.isdigit()


@dataclass(frozen=True, slots=True)
class RetryRow:
    """One service's part of the analysis: its declared calls and its hop (None: calls
    into it are not retried)."""

    calls: tuple[ServiceKey, ...]
    hop: RetryHop | None


def retry_row(model: MeshModel, key: ServiceKey) -> RetryRow:
    """`RetryRow` of the declared service `key` (a `MeshModel.derived` function: a change
    elsewhere in the mesh leaves it, and so the chain search, alone)."""
    view = model.services[key]
    return RetryRow(view.calls, service_hop(view))


def analyse(
    model: MeshModel, budget: int
) -> tuple[dict[ServiceKey, RetryHop], dict[ServiceKey, tuple[AmplifiedChain, int]]]:
    """Every retried service's hop, and `worst_chains` over the declared calls."""
    keys = tuple(sorted(model.services))
    rows = [model.derived(retry_row, key) for key in keys]
    hops = {key: row.hop for key, row in zip(keys, rows, strict=True) if row.hop is not None}
    index = {key: i for i, key in enumerate(keys)}
    graph = CallGraph(keys, tuple(tuple(index[c] for c in r.calls if c in index) for r in rows))
    return hops, worst_chains(graph, hops, budget)


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
    graph: CallGraph, hops: dict[ServiceKey, RetryHop], budget: int
) -> dict[ServiceKey, tuple[AmplifiedChain, int]]:
    """Per last hop, the worst shortest chain over `budget` and how many such chains end there.

    A chain starts at a caller of its first retrying service and ends at the hop that
    takes the product over the budget. The last hop counts with its full factor (its own
    failures are what it retries); every hop before it with its compound factor (only
    retries on failed answers repeat what the rest of the chain did). A chain counts
    only if dropping its first factor brings it within budget, so an excess is counted at
    the shortest chain that causes it, not again for every caller further upstream. A
    service appears at most once among a chain's retrying hops and the caller is not on
    the chain (cycles end the walk). The worst chain has the largest product, then the
    fewest services, then the first found.
    """
    index = {key: i for i, key in enumerate(graph.keys)}
    factors = {index[key]: hop.factor for key, hop in hops.items()}
    inner = {index[key]: hop.compound_factor for key, hop in hops.items()}
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
            # the last hop becomes an inner one: it repeats only what answered with a failure
            inside = (*chain_factors[:-1], inner[retrying[-1]])
            before = product // chain_factors[-1] * inside[-1]
            for target, via in reversed(links[retrying[-1]].items()):
                steps += 1
                if target not in retrying:
                    factor = factors[target]
                    stack.append(
                        ((*retrying, target), (*path, *via), (*inside, factor), before * factor)
                    )
    return {
        graph.keys[last]: (
            AmplifiedChain(tuple(graph.keys[i] for i in path), chain_factors),
            counts[last],
        )
        for last, (_, path, chain_factors) in best.items()
    }
