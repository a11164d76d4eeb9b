"""Lint rules about Rollout fields the Istio lowering can only carry on HTTP routes, or
carries in a transformed shape: header names (Istio wants them lowercase), cookie
matches (a regex over the `cookie` header) and mirrors (HTTP routes only)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from compiler.diagnostics import Severity
from compiler.kinds.rollout.checks import RolloutIntent
from compiler.kinds.rollout.model import MatchRule
from compiler.lint.registry import Finding, subject_rule
from compiler.lint.subjects import Subject, SubjectContext, subject_rollouts
from compiler.model.mesh import ServiceView

MAX_MATCH_COOKIES = 3
"""The lowering writes one regex alternative per order of the cookies (RE2 has no
lookahead): 3 cookies are 6 alternatives, 4 are 24, 5 are 120."""


def all_tcp(view: ServiceView) -> bool:
    """Whether every port of the service is declared `tcp` (no HTTP route is emitted)."""
    protocols = [port.protocol for port in view.spec.ports]
    return bool(protocols) and all(p == "tcp" for p in protocols)


def header_clashes(names: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(first, later) for every name equal to an earlier one once lowercased."""
    first: dict[str, str] = {}
    for name in names:
        seen = first.setdefault(name.lower(), name)
        if seen != name:
            yield seen, name


def _match_clashes(
    intent: RolloutIntent, view: ServiceView, index: int, match: MatchRule
) -> Iterator[Finding]:
    for first, later in header_clashes(match.headers):
        yield Finding(
            intent.key_span("match", index, "headers", later),
            f"{view.key}: match[{index}] headers {first!r} and {later!r} are one header "
            "(HTTP header names are case-insensitive and Istio matches them lowercased), "
            "so only one of the two conditions reaches the VirtualService",
            "write one condition per header; use a regex or prefix to accept several values",
        )
    if match.cookies:
        for name in match.headers:
            if name.lower() == "cookie":
                yield Finding(
                    intent.key_span("match", index, "headers", name),
                    f"{view.key}: match[{index}] has a {name!r} header condition and cookie "
                    "conditions; both match the cookie header, and the cookie match replaces "
                    "the header condition in the VirtualService",
                    "move the condition under cookies: (one entry per cookie name)",
                )


@subject_rule("MC323", "match-header-name-clash", Severity.ERROR)
def match_header_name_clash(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An A/B match rule names the same header twice in different case (or `cookie` as a
    header next to cookie conditions).

    **What it does.** Compares the `headers` names of each `match` rule case-insensitively,
    and reports a header named `cookie` in a rule that also has `cookies` conditions.

    **Why is this bad.** HTTP header names are case-insensitive (HTTP/2 sends them in
    lowercase) and Istio's VirtualService wants lowercase keys, so `End-User` and `end-user`
    become one key: one of the two conditions is lost without a trace. Cookie conditions
    are lowered to a regex on the `cookie` header, which takes the place of a header
    condition on `cookie`. Either way the rule matches other requests than it says.

    **Example.**
    ```yaml
    match:
    - headers: {End-User: {exact: jason}, end-user: {exact: maria}}
      version: v2
    ```

    **Use instead.** One condition per header (`end-user: {regex: "jason|maria"}`), or two
    match rules; cookie conditions under `cookies:`.
    """
    for intent, view in subject_rollouts(subject):
        for index, match in enumerate(intent.model.spec.match):
            yield from _match_clashes(intent, view, index, match)


@subject_rule("MC510", "mirror-on-tcp", Severity.WARNING)
def mirror_on_tcp(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Rollout mirrors traffic of a service whose ports are all `tcp`.

    **What it does.** Reports `mirror` when every port of the service is declared `tcp`
    (header and cookie matches on such a service are MC507; timeouts and retries MC609).

    **Why is this bad.** Mirroring copies HTTP requests; a TCP route forwards a byte
    stream and has no mirror. The lowering gives TCP ports the weighted split only, so the
    mirror the reviewers approved is silently not in force.

    **Example.** `ports: [{name: db, port: 5432, protocol: tcp}]` with
    `mirror: {version: v2, percentage: 10}`.

    **Use instead.** Declare the port as `http`, `http2` or `grpc` if it carries HTTP, or
    test the new version with a small weighted `split` instead.
    """
    for intent, view in subject_rollouts(subject):
        if intent.model.spec.mirror is not None and all_tcp(view):
            yield Finding(
                intent.key_span("mirror"),
                f"{view.key}: mirror on a service whose ports are all tcp; a TCP route cannot "
                "mirror, so the lowering leaves it out",
                "declare the port protocol as http, http2 or grpc, or remove the mirror",
            )


@subject_rule("MC511", "too-many-match-cookies", Severity.WARNING)
def too_many_match_cookies(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An A/B match rule names more than 3 cookies.

    **What it does.** Counts the `cookies` of each `match` rule.

    **Why is this bad.** Istio has no cookie match: the lowering matches the `cookie`
    header with a regex, and since RE2 has no lookahead it writes one alternative per order
    in which the cookies may appear. That is n! alternatives: 24 for 4 cookies, 120 for 5.
    The regex grows past what is reviewable and what Envoy's regex program-size limits are
    tuned for, and every request to the service is matched against it.

    **Example.**
    ```yaml
    - cookies: {a: {exact: "1"}, b: {exact: "1"}, c: {exact: "1"}, d: {exact: "1"}}
      version: v2
    ```

    **Use instead.** At most 3 cookies per rule: have the front end set one cookie (or a
    header) that names the cohort, and match on that.
    """
    for intent, view in subject_rollouts(subject):
        for index, match in enumerate(intent.model.spec.match):
            count = len(match.cookies)
            if count > MAX_MATCH_COOKIES:
                yield Finding(
                    intent.key_span("match", index, "cookies"),
                    f"{view.key}: match[{index}] names {count} cookies; the lowering matches "
                    f"the cookie header with one regex alternative per order of the cookies, "
                    f"{math.factorial(count)} alternatives",
                    f"match on at most {MAX_MATCH_COOKIES} cookies, e.g. one cookie or header "
                    "naming the cohort",
                )
