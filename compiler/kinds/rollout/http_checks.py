"""Lint rules about Rollout fields the Istio lowering can only carry on HTTP routes, or
carries in a transformed shape: header names (Istio wants them lowercase), cookie
matches (a regex over the `cookie` header) and mirrors (HTTP routes only)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from compiler.diagnostics import Severity
from compiler.kinds.rollout.checks import RolloutIntent
from compiler.kinds.rollout.cookies import cookie_regex
from compiler.kinds.rollout.model import MatchRule
from compiler.kinds.rollout.regex import ISTIO_MAX_REGEX_LENGTH, RegexProblem, regex_problem
from compiler.lint.registry import Finding, subject_rule
from compiler.lint.subjects import Subject, SubjectContext, subject_rollouts
from compiler.model.mesh import ServiceView

MAX_MATCH_COOKIES = 3
"""The lowering writes one regex alternative per order of the cookies (RE2 has no
lookahead): 3 cookies are 6 alternatives, 4 are 24, 5 are 120."""

MAX_LOWERED_COOKIES = 5
"""MC512 builds the lowered cookie regex up to this many cookies; past it the n! orders
are certainly longer than Istio allows, and building them would be slow."""


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


def _regex_findings(
    intent: RolloutIntent, view: ServiceView, index: int, match: MatchRule
) -> Iterator[Finding]:
    conditions = [("header", "headers", name, m) for name, m in match.headers.items()]
    conditions += [("cookie", "cookies", name, m) for name, m in match.cookies.items()]
    cookies_ok = True
    for what, field, name, string_match in conditions:
        if string_match.regex is None:
            continue
        problem = regex_problem(string_match.regex)
        if problem is None:
            continue
        cookies_ok = cookies_ok and what != "cookie"
        yield Finding(
            intent.span("match", index, field, name, "regex"),
            f"{view.key}: match[{index}] {what} {name!r} regex {string_match.regex!r}: "
            f"{problem.reason}; Istio or Envoy refuses the VirtualService route",
            problem.hint,
        )
    if match.cookies and cookies_ok:
        yield from _cookie_regex_findings(intent, view, index, match)


def _cookie_regex_findings(
    intent: RolloutIntent, view: ServiceView, index: int, match: MatchRule
) -> Iterator[Finding]:
    """The one regex the lowering writes for all of a rule's cookies must pass too (its
    length grows with the orders of the cookies; see MC511)."""
    # the regex Istio receives is the lowering's own (compiler.kinds.rollout.cookies)
    count = len(match.cookies)
    if count > MAX_LOWERED_COOKIES:  # n! orders of at least 8 characters each
        problem: RegexProblem | None = RegexProblem(
            None,
            f"{count} cookies lower to {math.factorial(count)} alternatives, far more than "
            f"the {ISTIO_MAX_REGEX_LENGTH} characters Istio allows a regex",
            "",
        )
    else:
        problem = regex_problem(cookie_regex(match.cookies))
    if problem is not None:
        yield Finding(
            intent.key_span("match", index, "cookies"),
            f"{view.key}: match[{index}] cookies: the cookie-header regex they lower to "
            f"is refused: {problem.reason}",
            "match on fewer cookies or shorter values (one cookie naming the cohort)",
        )


@subject_rule("MC512", "regex-rejected-by-istio", Severity.ERROR)
def regex_rejected_by_istio(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A `regex` of an A/B match is one Istio or Envoy refuses.

    **What it does.** Compiles every `regex` of a Rollout's `match` headers and cookies
    with Google RE2 (the engine of Envoy, and the syntax of Istio's validating webhook),
    then checks the limits the two add: no empty regex, at most 1024 characters (Istio)
    and a compiled program of at most 32768 (Envoy's `re2.max_program_size.error_level`
    as Istio configures it). A refused regex is explained by name where it is a Perl or
    Python construct RE2 lacks -- backreferences (`\\1`, `(?P=name)`), lookahead and
    lookbehind (`(?=`, `(?!`, `(?<=`, `(?<!`), atomic groups (`(?>`), possessive
    quantifiers (`a++`), comments (`(?#`), conditionals, flags other than `i m s U`,
    Python's `\\Z` -- and otherwise by Python's `re` or RE2's own message, with its
    position. The single regex the lowering writes for a rule's cookies is checked too.

    **Why is this bad.** Neither the CRD schema nor its CEL rules look inside a regex, so
    `meshc lint --crds` passes and the apply fails: Istio's webhook rejects the
    VirtualService (the whole service's routing, not just the A/B rule), or, past the
    program-size limit, Envoy rejects the route configuration it is sent. Regexes written
    for Python, Java or PCRE often use the constructs above.

    **Example.**
    ```yaml
    match:
    - headers: {user-agent: {regex: "^(?!.*bot).*Chrome"}}
      version: v2
    ```

    **Use instead.** An RE2 regex (RE2 matches in linear time, so it has no need for
    atomic groups or possessive quantifiers): list what may match rather than what may
    not, e.g. `{regex: ".*Chrome.*"}` with a second, earlier rule sending bots to `v1`.
    """
    for intent, view in subject_rollouts(subject):
        for index, match in enumerate(intent.model.spec.match):
            yield from _regex_findings(intent, view, index, match)
