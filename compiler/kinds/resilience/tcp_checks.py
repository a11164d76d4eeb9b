"""Lint rules about Resilience settings that only HTTP routes carry (timeouts, retries),
written for ports the service declares `tcp`: the lowering has nowhere to put them."""

from __future__ import annotations

from collections.abc import Iterable

from compiler.diagnostics import Severity
from compiler.kinds.resilience.checks import ResilienceIntent
from compiler.lint.registry import Finding, subject_rule
from compiler.lint.subjects import Subject, SubjectContext, subject_resilience
from compiler.model.mesh import ServiceView


def covered_protocols(intent: ResilienceIntent, view: ServiceView) -> list[str | None]:
    """The protocols of the ports a Resilience applies to (its `port`, or all of them);
    empty for an unknown port (MC223's)."""
    port = intent.model.spec.port
    return [p.protocol for p in view.spec.ports if port is None or p.port == port]


@subject_rule("MC609", "http-resilience-on-tcp", Severity.WARNING)
def http_resilience_on_tcp(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Resilience sets `timeout` or `retries` for ports that are all `tcp`.

    **What it does.** Reports `timeout` and `retries` (with `attempts` above 0) of a
    Resilience whose `port` is declared `tcp`, or, without `port`, on a service whose ports
    are all `tcp`. Connection-pool limits, outlier detection and load balancing work on
    TCP and are not reported.

    **Why is this bad.** Request timeouts and retries are properties of HTTP routes; a TCP
    route forwards a byte stream and has neither. The lowering gives TCP ports a weighted
    route only, so the timeout and retries the reviewers approved are silently not in
    force.

    **Example.** `ports: [{name: db, port: 5432, protocol: tcp}]` with
    `timeout: 2s` and `retries: {attempts: 2}`.

    **Use instead.** Declare the port as `http`, `http2` or `grpc` if it carries HTTP;
    for TCP, protect the service with `circuitBreaker` limits (`maxConnections`) and
    outlier detection, and leave timeouts to the client.
    """
    for intent, view in subject_resilience(subject):
        protocols = covered_protocols(intent, view)
        if not protocols or any(p != "tcp" for p in protocols):
            continue
        spec = intent.model.spec
        port = spec.port
        where = f"port {port} is tcp" if port is not None else "its ports are all tcp"
        fields = []
        if spec.timeout is not None:
            fields.append("timeout")
        if spec.retries is not None and spec.retries.attempts > 0:
            fields.append("retries")
        for name in fields:
            yield Finding(
                intent.key_span(name),
                f"{view.key}: {name} applies to HTTP routes only, but {where}; "
                "the lowering leaves it out",
                "declare the port protocol as http, http2 or grpc if it carries HTTP, or "
                f"remove {name} (circuitBreaker limits and outlier detection work on TCP)",
            )
