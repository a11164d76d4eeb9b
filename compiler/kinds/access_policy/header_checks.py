"""Lint rules about AccessPolicy conditions the Istio lowering transforms or cannot
enforce: header names (lowercased in AuthorizationPolicy keys) and HTTP conditions
(methods, paths, headers) on ports the service declares `tcp`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from compiler.diagnostics import Severity, Span
from compiler.kinds.access_policy.checks import Policy
from compiler.kinds.access_policy.model import Rule
from compiler.kinds.rollout.http_checks import header_clashes
from compiler.kinds.service.model import Port
from compiler.lint.registry import Finding, subject_rule
from compiler.lint.subjects import Subject, SubjectContext
from compiler.model.mesh import ServiceView


@subject_rule("MC324", "policy-header-name-clash", Severity.ERROR)
def policy_header_name_clash(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An access rule's `headers` name the same header twice in different case.

    **What it does.** Compares the `headers` names of each rule case-insensitively.

    **Why is this bad.** HTTP header names are case-insensitive, and the lowering writes
    them lowercased (`request.headers[x-role]`), as Istio expects. Two entries that differ
    only in case become two conditions on one header, and Istio requires both: a request
    passes only with a value listed in both entries. An author who meant "either list"
    gets a rule that admits less, or nothing; meshc's own coverage checks read the two
    entries as one.

    **Example.** `headers: {X-Role: [admin], x-role: [ops]}`

    **Use instead.** One entry listing every accepted value: `headers: {x-role: [admin, ops]}`.
    """
    for policy in subject.policies:
        for index, r in enumerate(policy.model.spec.rules):
            for first, later in header_clashes(r.headers):
                both = sorted(set(r.headers[first]) & set(r.headers[later]))
                passing = ", ".join(both) if both else "none: the rule never matches"
                yield Finding(
                    policy.key_span("rules", index, "headers", later),
                    f"rule {index + 1}: headers {first!r} and {later!r} are one header (names "
                    "are case-insensitive); Istio requires both conditions, so only values in "
                    f"both lists pass ({passing})",
                    "merge them into one entry listing every accepted value",
                )


def _named_port(view: ServiceView, port: int | str) -> Port | None:
    for candidate in view.spec.ports:
        if port in (candidate.port, candidate.name):
            return candidate  # type: ignore[no-any-return]
        if isinstance(port, str) and port.isdigit() and int(port) == candidate.port:
            return candidate  # type: ignore[no-any-return]
    return None


def _http_fields(r: Rule) -> list[str]:
    fields = [name for name in ("methods", "paths") if getattr(r.to, name)]
    return [*fields, "headers"] if r.headers else fields


def _consequence(r: Rule) -> str:
    if r.action == "allow":
        return "Istio ignores this allow rule on a TCP port, so the port stays denied to it"
    return (
        "Istio drops the HTTP conditions on a TCP port, so this deny rule denies every "
        "connection from its sources to the port"
    )


def _tcp_sites(policy: Policy, index: int, r: Rule, view: ServiceView) -> Iterator[Finding]:
    fields = _http_fields(r)
    if not fields:
        return
    listed = ", ".join(fields)
    hint = (
        "declare the port protocol as http, http2 or grpc if it carries HTTP, or give the "
        "tcp port its own rule without methods, paths and headers"
    )
    sites: list[tuple[Span, str]] = []
    if r.to.ports:
        for position, port in enumerate(r.to.ports):
            found = _named_port(view, port)
            if found is not None and found.protocol == "tcp":
                sites.append(
                    (
                        policy.span("rules", index, "to", "ports", position),
                        f"tcp port {found.name!r} ({found.port})",
                    )
                )
    elif view.spec.ports and all(p.protocol == "tcp" for p in view.spec.ports):
        first = fields[0]
        path = ("rules", index, "headers") if first == "headers" else ("rules", index, "to", first)
        sites.append((policy.key_span(*path), f"{view.key}, whose ports are all tcp"))
    for span, what in sites:
        yield Finding(
            span,
            f"rule {index + 1} has HTTP conditions ({listed}) on {what}: {_consequence(r)}",
            hint,
        )


@subject_rule("MC411", "http-conditions-on-tcp-port", Severity.ERROR)
def http_conditions_on_tcp_port(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """An access rule with methods, paths or headers applies to a port declared `tcp`.

    **What it does.** Reports rules with `to.methods`, `to.paths` or `headers` whose
    `to.ports` name a `tcp` port (at that port), or that name no ports on a service whose
    ports are all `tcp` (at the first HTTP condition).

    **Why is this bad.** On a TCP port the proxy never parses HTTP, so Istio cannot evaluate
    these conditions. For an ALLOW policy it ignores the whole rule there, so the callers it
    names are denied; for a DENY policy it drops the HTTP conditions, so the rule denies
    every connection from its sources. Either way the port is not governed by what the rule
    says.

    **Example.**
    ```yaml
    # ports: [{name: db, port: 5432, protocol: tcp}]
    - from: [{service: api}]
      to: {ports: [db], methods: [GET]}
    ```

    **Use instead.** `to: {ports: [db]}` for the TCP port, and methods/paths/headers only
    on HTTP ports (or declare the port `http` if it carries HTTP).
    """
    view = subject.view  # the policies' target; policies for an undeclared one are MC202's
    if view is None:
        return
    for policy in subject.policies:
        for index, r in enumerate(policy.model.spec.rules):
            yield from _tcp_sites(policy, index, r, view)
