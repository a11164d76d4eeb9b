"""Exact access changes: which requests a change newly allows or no longer allows.

A server's access is summarised as an `AccessShape`: the requests its live policies allow,
as the backends enforce them (enforced deny rules first, then enforced allow rules; shadow
mode and a default allow admit every authenticated caller; a default deny admits none).
Two shapes are compared over every *cell* of the request space that the rules of either
can tell apart: callers (each principal and namespace either names, and anyone else),
methods, paths (exact, `prefix*`, `*suffix`), ports and header values. Each cell gets one
concrete witness request, so the comparison is exact and each gained or lost part comes
with an example a reviewer can try.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from compiler.kinds.access_policy.model import Method, pattern_matches
from compiler.model.access import spiffe_namespace
from compiler.model.records import ResolvedRule, ServiceRecord

METHODS: tuple[str, ...] = (*sorted(get_args(Method)), "PROPFIND")
"""Every method a rule may name, and one no rule can (a request may use any)."""
FRESH = "\u2400"
"""A character no pattern contains: a witness built around it matches exactly the
patterns the cell it stands for matches."""
ANYONE = ("~", "~")
"""A caller no rule names: an identity in a namespace no rule names."""

Posture = Literal["rules", "open", "closed"]


@dataclass(frozen=True, slots=True)
class ShapeRule:
    """One live rule, as the proxy evaluates it."""

    action: Literal["allow", "deny"]
    principals: tuple[str, ...]
    """SPIFFE IDs, or `*` for any authenticated caller."""
    namespaces: tuple[str, ...]
    methods: tuple[str, ...]
    paths: tuple[str, ...]
    ports: tuple[int, ...] | None
    """None: any port."""
    headers: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class AccessShape:
    posture: Posture
    rules: tuple[ShapeRule, ...]
    ports: tuple[int, ...]
    """The ports the service listens on (the requests that can reach it at all)."""


@dataclass(frozen=True, order=True, slots=True)
class Request:
    method: str
    path: str
    port: int
    headers: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        headers = "".join(f" [{name}: {value}]" for name, value in self.headers)
        return f"{self.method} {self.path} (port {self.port}){headers}"


@dataclass(frozen=True, order=True, slots=True)
class AccessChange:
    """One caller's requests to one server port that a change allows or stops allowing."""

    server: str
    caller: str
    """The caller as a reviewer reads it: a service, the ingress gateway, or a class."""
    port: int
    gained: bool
    example: Request

    def text(self) -> str:
        verb = "newly allowed" if self.gained else "no longer allowed"
        return f"{self.caller} → {self.server}: {self.example.text()} {verb}"


def access_shape(record: ServiceRecord, *, default_allow: bool, trust_domain: str) -> AccessShape:
    """The live access of one service, from its effective record."""
    ports = tuple(sorted({int(p.container_port) for p in record.view.spec.ports}))
    enforced = [rule for rule in record.rules if rule.mode == "enforce"]
    if not enforced:
        if record.view.policies or default_allow:
            return AccessShape("open", (), ports)
        return AccessShape("closed", (), ports)
    return AccessShape("rules", tuple(_live(rule, trust_domain) for rule in enforced), ports)


def _live(resolved: ResolvedRule, trust_domain: str) -> ShapeRule:
    """The rule as it is enforced (see `ResolvedRule.live_sources` and `live_ports`)."""
    rule = resolved.rule
    principals, namespaces = resolved.live_sources(trust_domain)
    return ShapeRule(
        rule.action,
        tuple(sorted(principals)),
        tuple(sorted(namespaces)),
        tuple(sorted(set(rule.to.methods))),
        tuple(sorted(set(rule.to.paths))),
        resolved.live_ports(),
        tuple(sorted((name.lower(), tuple(values)) for name, values in rule.headers.items())),
    )


def allowed(shape: AccessShape, caller: tuple[str, str], request: Request) -> bool:
    """Whether `caller` (SPIFFE ID, namespace) may send `request` to the service."""
    if shape.posture != "rules":
        return shape.posture == "open"
    rules = shape.rules
    if any(r.action == "deny" and _matches(r, caller, request) for r in rules):
        return False
    return any(r.action == "allow" and _matches(r, caller, request) for r in rules)


def _matches(rule: ShapeRule, caller: tuple[str, str], request: Request) -> bool:
    principal, namespace = caller
    if not (
        ("*" in rule.principals or principal in rule.principals) or namespace in rule.namespaces
    ):
        return False
    if rule.methods and request.method not in rule.methods:
        return False
    if rule.paths and not any(pattern_matches(p, request.path) for p in rule.paths):
        return False
    if rule.ports is not None and request.port not in rule.ports:
        return False
    sent = dict(request.headers)
    return all(
        name in sent and any(pattern_matches(v, sent[name]) for v in values)
        for name, values in rule.headers
    )


def changes(
    server: str,
    base: AccessShape | None,
    head: AccessShape | None,
    labels: Mapping[str, str],
) -> list[AccessChange]:
    """Every (caller, port) whose allowed requests differ, each way, with one example.
    `labels` names callers by SPIFFE ID (the services running as one, the gateway)."""
    sides = [shape for shape in (base, head) if shape is not None]
    out: list[AccessChange] = []
    for caller, label in _callers(sides, labels):
        relevant = [r for shape in sides for r in shape.rules if _admits(r, caller)]
        ports = sorted({p for shape in sides for p in shape.ports} | _named_ports(relevant))
        seen: set[tuple[int, bool]] = set()
        for request in _requests(relevant, ports):
            before = base is not None and allowed(base, caller, request)
            after = head is not None and allowed(head, caller, request)
            if before != after and (request.port, after) not in seen:
                seen.add((request.port, after))
                out.append(AccessChange(server, label, request.port, after, request))
    return sorted(out)


def _admits(rule: ShapeRule, caller: tuple[str, str]) -> bool:
    principal, namespace = caller
    return "*" in rule.principals or principal in rule.principals or namespace in rule.namespaces


def _callers(
    sides: list[AccessShape], labels: Mapping[str, str]
) -> Iterator[tuple[tuple[str, str], str]]:
    """A caller for every principal and namespace a rule names, and one no rule names."""
    rules = [rule for shape in sides for rule in shape.rules]
    for principal in sorted({p for r in rules for p in r.principals if p != "*"}):
        label = labels.get(principal, principal.removeprefix("spiffe://"))
        yield (principal, spiffe_namespace(principal) or "~"), label
    for namespace in sorted({n for r in rules for n in r.namespaces}):
        yield (f"~other-in-{namespace}", namespace), f"any other identity in {namespace}"
    yield ANYONE, "any other mesh identity"


def _requests(rules: list[ShapeRule], ports: list[int]) -> Iterator[Request]:
    """One request in every cell `rules` tell apart: each method a rule names and one it
    does not, each path and header cell, each port."""
    named = {method for rule in rules for method in rule.methods}
    methods = [m for m in METHODS if m in named]
    methods.append(next(m for m in METHODS if m not in named))
    paths = path_witnesses([p for r in rules for p in r.paths])
    headers = list(_header_witnesses(rules))
    for method, path, port, sent in itertools.product(methods, paths, ports, headers):
        yield Request(method, path, port, sent)


def _named_ports(rules: Iterable[ShapeRule]) -> set[int]:
    return {port for rule in rules for port in (rule.ports or ())}


def value_witnesses(patterns: Iterable[str], *, start: str = "") -> list[str]:
    """One value in every cell of the space the patterns tell apart: each exact value, and
    for each longest matched prefix and suffix a value built around a character no pattern
    contains (so it matches exactly the prefixes and suffixes it is built of). `start`:
    what every value begins with (`/` for paths)."""
    patterns = set(patterns)
    exact = {p for p in patterns if "*" not in p}
    prefixes = {p[:-1] for p in patterns if p.endswith("*") and p != "*"}
    suffixes = {p[1:] for p in patterns if p.startswith("*") and p != "*"}
    found = set(exact)
    ordered = sorted(patterns)
    for prefix in ["", *prefixes]:
        for suffix in ["", *suffixes]:
            head = prefix if prefix.startswith(start) else start + prefix
            exact_cell = _signature(ordered, head + FRESH + suffix)
            found.add(
                next(
                    value
                    for value in (head + filler + suffix for filler in (*_READABLE, FRESH))
                    if _signature(ordered, value) == exact_cell
                )
            )
    return sorted(found)


_READABLE = ("x", "example", "x9")
"""Fillers a reviewer can type, used when they fall in the same cell as `FRESH`."""


def _signature(patterns: list[str], value: str) -> tuple[bool, ...]:
    return tuple(pattern_matches(pattern, value) for pattern in patterns)


def path_witnesses(patterns: list[str]) -> list[str]:
    return value_witnesses(patterns, start="/")


def _header_witnesses(rules: list[ShapeRule]) -> Iterator[tuple[tuple[str, str], ...]]:
    """Every combination of: each named header absent, or set to a witness of each cell
    of its value patterns."""
    values: dict[str, set[str]] = {}
    for rule in rules:
        for name, accepted in rule.headers:
            values.setdefault(name, set()).update(accepted)
    names = sorted(values)
    choices = [[None, *value_witnesses(values[name])] for name in names]
    for combination in itertools.product(*choices):
        yield tuple((name, value) for name, value in zip(names, combination, strict=True) if value)
