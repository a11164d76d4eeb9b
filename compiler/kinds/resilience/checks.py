"""Lint rules about Resilience documents (and the durations/percentages of Rollouts)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from compiler.diagnostics import Severity, Span
from compiler.kinds.common import duration_ms, format_ms
from compiler.kinds.references import undeclared_service
from compiler.kinds.resilience.chains import RetryHop, analyse
from compiler.kinds.resilience.model import (
    ISTIO_DEFAULT_RETRY_ON,
    RETRY_AFTER_UPSTREAM,
    RETRY_ON_TOKENS,
    ResilienceDocument,
)
from compiler.lint.registry import Finding, LintContext, rule, subject_rule
from compiler.lint.subjects import Subject, SubjectContext, subject_resilience, subject_views
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.model.methods import ALL_METHODS, is_unrestricted, non_idempotent_methods
from compiler.validate import Intent

ResilienceIntent = Intent[ResilienceDocument]
Path = tuple[str | int, ...]

STATUS_CODE = re.compile(r"^[1-5][0-9][0-9]$")
"""Istio accepts HTTP status codes in `retryOn` (they become retriable status codes)."""


def _subject(intent: ResilienceIntent, view: ServiceView) -> str:
    port = intent.model.spec.port
    return f"{view.key} port {port}" if port is not None else str(view.key)


@subject_rule("MC221", "resilience-unknown-service", Severity.ERROR, istio="IST0101")
def resilience_unknown_service(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Resilience names a service that no Service document declares.

    **What it does.** Resolves `spec.service` of every Resilience (`name` in its namespace,
    `ns/name` elsewhere) against the declared services.

    **Why is this bad.** Nothing is lowered for it: the timeouts, retries and circuit
    breakers the author relies on are not in force. Istio reports references to missing
    hosts as IST0101 (ReferencedResourceNotFound).

    **Example.** `spec: {service: rating, timeout: 2s}`

    **Use instead.** `spec: {service: ratings, timeout: 2s}`
    """
    yield from undeclared_service(ctx.model, subject.resilience, "Resilience")


@subject_rule("MC223", "resilience-unknown-port", Severity.ERROR, istio="IST0101")
def resilience_unknown_port(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Resilience `port` is not a port of its service.

    **What it does.** Checks `spec.port` against the service's `ports[].port` (the service
    port, not the container's `targetPort`).

    **Why is this bad.** The per-port settings are emitted for a port nobody calls, so they
    never apply.

    **Example.** `spec: {service: ratings, port: 8080}` while ratings listens on 9080.

    **Use instead.** `port: 9080`, or drop `port` to apply to every port.
    """
    for intent, view in subject_resilience(subject):
        port = intent.model.spec.port
        ports = [p.port for p in view.spec.ports]
        if port is None or port in ports:
            continue
        targets = [p.target_port for p in view.spec.ports if p.target_port == port]
        hint = (
            f"{port} is a targetPort; write the service port instead"
            if targets
            else "use one of its ports: "
            + ", ".join(f"{p.port} ({p.name})" for p in view.spec.ports)
        )
        yield Finding(
            intent.span("port"), f"{view.key}: port {port} is not a port of the service", hint
        )


@subject_rule("MC322", "duplicate-resilience", Severity.ERROR)
def duplicate_resilience(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """Two Resilience documents configure the same service and port (or both the whole service).

    **What it does.** Reports every Resilience after the first (in file order) for the same
    service and `port` (no `port` meaning service-wide).

    **Why is this bad.** Only one timeout and one retry policy can apply to a route; which
    document wins would depend on file order, and a reviewer reading one of them is misled.

    **Example.** `ratings.yaml` and `ratings-retries.yaml` both with `service: ratings`, no port.

    **Use instead.** One Resilience per service (or per service port) holding all its settings.
    """
    for view in subject_views(subject):
        seen: dict[int | None, ResilienceIntent] = {}
        for intent in view.resilience:
            port = intent.model.spec.port
            first = seen.setdefault(port, intent)
            if first is intent:
                continue
            scope = f"port {port}" if port is not None else "the whole service"
            yield Finding(
                intent.span("port") if port is not None else intent.span("service"),
                f"{view.key}: a second Resilience for {scope} (the first is {first.ref})",
                "merge both into one Resilience",
            )


@subject_rule("MC601", "retry-non-idempotent", Severity.WARNING)
def retry_non_idempotent(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """Retries may repeat non-idempotent requests that already reached the server.

    **What it does.** Reports retries whose `retryOn` holds a condition that fires after the
    upstream received the request (`5xx`, `reset`, `gateway-error`, a status code such as
    `503`, gRPC `unavailable` ...; an empty `retryOn` means Istio's default, which has some)
    when POST, PATCH or CONNECT can reach the service per its AccessPolicies (or no enforced
    AccessPolicy restricts its methods), unless `retries.nonIdempotent: true` opts in.
    Methods only the ingress gateway may send do not count: the gateway routes with its
    own VirtualService, so these retries never apply to its requests. Ports without
    declared retries get Istio's default policy, which can do the same: that is MC612.

    **Why is this bad.** The proxy retries whatever the method: a POST that timed out after
    the server created the order is sent again and creates a second order.

    **Example.**
    ```yaml
    retries: {attempts: 3, retryOn: [5xx, reset]}   # the service accepts POST /orders
    ```

    **Use instead.** Retry only before the request is sent
    (`retryOn: [connect-failure, refused-stream, reset-before-request]`), or, when the handlers
    are idempotent (idempotency keys), say so with `nonIdempotent: true`.
    """
    model = ctx.model
    for intent, view in subject_resilience(subject):
        retries = intent.model.spec.retries
        if retries is None or retries.attempts <= 0 or retries.non_idempotent:
            continue
        methods = mesh_non_idempotent_methods(view, model)
        if not methods:
            continue
        tokens = retries.retry_on or list(ISTIO_DEFAULT_RETRY_ON)
        unsafe = [t for t in tokens if t in RETRY_AFTER_UPSTREAM or STATUS_CODE.match(t)]
        if not unsafe:
            continue
        path: Path = (
            ("retries", "retryOn", retries.retry_on.index(unsafe[0]))
            if retries.retry_on
            else ("retries",)
        )
        why = (
            "no enforced AccessPolicy restricts its methods"
            if is_unrestricted(view)
            else "its AccessPolicies allow " + ", ".join(sorted(methods))
        )
        default = "" if retries.retry_on else " (Istio's default retryOn)"
        yield Finding(
            intent.span(*path),
            f"{_subject(intent, view)}: retrying on {', '.join(unsafe)}{default} may repeat "
            f"non-idempotent requests that already reached the server ({why})",
            "retry only on connect-failure, refused-stream or reset-before-request, or set "
            "retries.nonIdempotent: true if the handlers are idempotent",
        )


def default_retry_ports(view: ServiceView) -> list[int]:
    """The HTTP ports of `view` that no Resilience gives `retries`: Istio applies its
    default retry policy there (a per-port Resilience without retries falls back to the
    service-wide one, as the lowering does; TCP ports have no retries at all)."""
    http_ports = [p.port for p in view.spec.ports if p.protocol != "tcp"]
    covered: set[int] = set()
    for intent in view.resilience:
        if intent.model.spec.retries is None:
            continue
        port = intent.model.spec.port
        covered.update(http_ports if port is None else [port])
    return [port for port in http_ports if port not in covered]


def mesh_non_idempotent_methods(view: ServiceView, model: MeshModel) -> frozenset[str]:
    """The non-idempotent methods callers inside the mesh may send to `view`.

    Allow rules whose only source is the ingress gateway do not count: the gateway's
    routes (and their retries) come from the routes bound to the gateway, which carry no
    Resilience settings (meshc writes them only for a Rollout's split), so a Resilience
    here could not change them."""
    methods = non_idempotent_methods(view, model)
    if is_unrestricted(view):
        return methods
    mesh: set[str] = set()
    for policy in view.policies:
        if policy.model.spec.mode != "enforce":
            continue
        for allow in policy.model.spec.rules:
            if allow.action == "allow" and any(not s.ingress_gateway for s in allow.from_):
                mesh.update(allow.to.methods or ALL_METHODS)
    return methods & mesh


@subject_rule("MC612", "default-retry-non-idempotent", Severity.INFO)
def default_retry_non_idempotent(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """Istio's default retries may repeat non-idempotent requests to a service without
    declared retries.

    **What it does.** Reports an HTTP port (`http`, `http2`, `grpc`) that no Resilience
    gives `retries`, when callers inside the mesh may send it POST, PATCH or CONNECT per
    its AccessPolicies (or no enforced AccessPolicy restricts its methods). PUT and DELETE
    are idempotent by definition (RFC 9110) and do not count; neither do methods only the
    ingress gateway may send, since the gateway's retries come from the routes bound to it,
    which carry no Resilience settings (meshc binds one only for a Rollout's split). MC601
    is the same check for retries a Resilience declares.

    **Why is this bad.** A route without a retry policy is not a route without retries:
    Istio gives it 2 retries on `connect-failure, refused-stream, unavailable, cancelled,
    retriable-status-codes` with 503 as the retriable status. `connect-failure` and
    `refused-stream` fire before the server saw the request and are safe. The others are
    answers from a server that received it -- a 503 (an overloaded handler, a failing
    dependency, the server's sidecar timing out the app) or a gRPC `unavailable` or
    `cancelled` status -- and the server may have acted before answering: the POST is
    sent again and the order is created twice. It is an info because it is Istio's
    behaviour rather than something written here, and most handlers fail before their
    side effect; review the services where they do not.

    **Example.** A Service with `ports: [{name: http, port: 9080, protocol: http}]`, an
    AccessPolicy allowing `methods: [GET, POST]`, and no Resilience with `retries`.

    **Use instead.** A Resilience that says what to retry: `retries: {attempts: 0}` to
    turn retries off, or `retries: {attempts: 2, retryOn: [connect-failure,
    refused-stream]}` to keep the safe ones; `nonIdempotent: true` on explicit retries
    when the handlers are idempotent (idempotency keys).
    """
    for view in subject_views(subject):
        ports = default_retry_ports(view)
        methods = mesh_non_idempotent_methods(view, ctx.model) if ports else frozenset()
        if not methods:
            continue
        why = (
            "no enforced AccessPolicy restricts its methods"
            if is_unrestricted(view)
            else "its AccessPolicies allow " + ", ".join(sorted(methods))
        )
        index = next(i for i, p in enumerate(view.spec.ports) if p.port == ports[0])
        listed = ", ".join(str(port) for port in ports)
        yield Finding(
            view.intent.span("ports", index),
            f"{view.key}: no Resilience sets retries for port {listed}, so Istio's default "
            "policy applies (2 retries, on 503 and gRPC unavailable/cancelled answers among "
            f"others) and may repeat non-idempotent requests that reached the server ({why})",
            "add a Resilience with retries: {attempts: 0}, or with retryOn limited to "
            "[connect-failure, refused-stream]",
        )


@subject_rule("MC602", "per-try-timeout-exceeds-timeout", Severity.WARNING)
def per_try_timeout_exceeds_timeout(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """`perTryTimeout × (attempts + 1)` is longer than the overall `timeout`.

    **What it does.** Compares the time all tries may take with the route's `timeout`, which
    bounds the whole request including its retries.

    **Why is this bad.** The overall timeout fires first, so the last retries are never made
    (or are cut off half-way): the retry policy promises more than it delivers.

    **Example.** `timeout: 1s` with `retries: {attempts: 3, perTryTimeout: 500ms}` (4 × 500ms = 2s).

    **Use instead.** `timeout: 2s`, or `perTryTimeout: 250ms`, or fewer attempts.
    """
    for intent, view in subject_resilience(subject):
        spec = intent.model.spec
        retries = spec.retries
        if (
            spec.timeout is None
            or retries is None
            or retries.per_try_timeout is None
            or retries.attempts < 0
        ):
            continue
        tries = retries.attempts + 1
        per_try = duration_ms(retries.per_try_timeout)
        total, timeout = per_try * tries, duration_ms(spec.timeout)
        if total > timeout:
            yield Finding(
                intent.span("retries", "perTryTimeout"),
                f"{_subject(intent, view)}: {tries} tries × {retries.per_try_timeout} = "
                f"{format_ms(total)} "
                f"exceed the timeout of {spec.timeout}, so the last retries are cut off",
                f"raise timeout to at least {format_ms(total)}, or lower perTryTimeout or attempts",
            )


@rule("MC603", "retry-amplification", Severity.WARNING)
def retry_amplification(ctx: LintContext) -> Iterable[Finding]:
    """Retries at several hops of a call chain multiply beyond the mesh's retry budget.

    **What it does.** Walks the declared `calls:` graph (cycle-safe) and multiplies
    `attempts + 1` of the Resilience of every service called along a chain. A call into an
    HTTP port that no Resilience gives `retries` counts as 3 tries: Istio then applies its
    default retry policy (2 retries on connect-failure, refused-stream, unavailable,
    cancelled and retriable-status-codes); `retries: {attempts: 0}` turns it off. TCP ports
    are never retried. `retryOn` counts: a hop inside the chain multiplies only if it
    retries on a failed answer (`5xx`, `gateway-error`, `reset`, `retriable-status-codes`,
    a status code, the gRPC statuses...), because that is what its callee returns when
    something further down failed; retries on `connect-failure` or `refused-stream` alone
    count only at the last hop. A chain whose product exceeds `Mesh.spec.retryBudget` (default 10)
    is reported at the retries of its last hop (for Istio's default, at the `calls:` entry
    that reaches it), with the chain and the arithmetic; when several chains end at the same
    hop, the worst is shown and the others counted. Only the shortest chain causing an
    excess is counted, not every caller further upstream.

    **Why is this bad.** When the deepest service is slow or down, every layer retries every
    retry of the layer below: 4 attempts at two hops are 16 requests for one user click,
    exactly when the service is least able to take them (a retry storm).

    **Example.**
    ```yaml
    # frontend calls api, api calls db
    kind: Resilience
    spec: {service: api, retries: {attempts: 3}}
    ---
    kind: Resilience
    spec: {service: db, retries: {attempts: 3}}    # frontend → api → db: 4 × 4 = 16 attempts
    ```

    Istio's default counts too: `frontend → api → db → cache` with no `retries` anywhere is
    3 × 3 × 3 = 27 attempts.

    **Use instead.** Retry at one layer only (usually the one nearest the failing service,
    with `retries: {attempts: 0}` elsewhere), lower `attempts`, or raise `retryBudget` in the
    Mesh if the load is truly acceptable.
    """
    model = ctx.model
    budget = model.settings.retry_budget
    hops, worst = analyse(model, budget)
    for last in sorted(worst):
        chain, count = worst[last]
        start = chain.path[0]
        names = " → ".join(key.short(start.namespace) for key in chain.path)
        retrying = [key for key in chain.path[1:] if key in hops]
        shown = " × ".join(
            f"{factor} (Istio default: 2 retries)" if hops[key].is_default else str(factor)
            for key, factor in zip(retrying, chain.factors, strict=True)
            if factor > 1  # an inner hop retrying only on connection failures adds nothing
        )
        more = f" ({count - 1} more chain(s) end here)" if count > 1 else ""
        yield Finding(
            _hop_span(model, hops[last], chain.path),
            f"retry amplification {names}: {shown} = {chain.product} attempts "
            f"exceed the mesh retry budget of {budget}{more}",
            "retry at one hop of the chain only, lower attempts, or raise Mesh spec.retryBudget",
        )


def _hop_span(model: MeshModel, hop: RetryHop, path: tuple[ServiceKey, ...]) -> Span:
    """Declared retries: at their `attempts`. Istio's default: at the `calls:` entry of the
    service before it on the chain (the declared call that the default policy retries)."""
    if hop.intent is not None:
        return hop.intent.span("retries", "attempts")
    caller = model.services[path[-2]]
    index = caller.calls.index(path[-1])
    return caller.intent.span("calls", index)


@subject_rule("MC604", "unknown-retry-on", Severity.ERROR)
def unknown_retry_on(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A `retryOn` token is not a retry condition Istio/Envoy know.

    **What it does.** Checks every `retries.retryOn` entry against Envoy's HTTP and gRPC
    retry conditions (`5xx`, `gateway-error`, `reset`, `connect-failure`,
    `retriable-4xx`, `refused-stream`, `unavailable`, ...) and HTTP status codes (`503`),
    which Istio also accepts, and suggests the closest valid token.

    **Why is this bad.** Envoy ignores conditions it does not know, so a misspelt token
    means the retries the author expects never happen.

    **Example.** `retryOn: [5XX, connect-failures]`

    **Use instead.** `retryOn: [5xx, connect-failure]`
    """
    known = sorted(RETRY_ON_TOKENS)
    for intent, view in subject_resilience(subject):
        retries = intent.model.spec.retries
        if retries is None:
            continue
        for i, token in enumerate(retries.retry_on):
            if token in RETRY_ON_TOKENS or STATUS_CODE.match(token):
                continue
            if "," in token:
                hint = (
                    "write one condition per list item: ["
                    + ", ".join(t.strip() for t in token.split(","))
                    + "]"
                )
            else:
                close = difflib.get_close_matches(token.lower(), known, n=1, cutoff=0.6)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else "valid: " + ", ".join(known) + ", or a status code"
                )
            yield Finding(
                intent.span("retries", "retryOn", i),
                f"{_subject(intent, view)}: unknown retryOn condition {token!r}",
                hint,
            )


@subject_rule("MC607", "target-cannot-express", Severity.WARNING)
def target_cannot_express(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A Resilience field has no form in one of the targets (e.g. `localRateLimit` on Istio).

    **What it does.** Reports fields that only the Envoy (xDS) target lowers. Today that is
    `localRateLimit`: Istio v1 has no API field for a local rate limit (only an EnvoyFilter,
    which meshc does not emit).

    **Why is this bad.** On Istio the setting silently does nothing: the service is not
    protected by the limit its owners reviewed.

    **Example.** `localRateLimit: {requests: 100, per: 1s}` in a mesh deployed with Istio.

    **Use instead.** Keep it only for the Envoy target, or protect the service with circuit
    breaker limits (`maxRequests`, `maxPendingRequests`), which both targets express; or
    suppress with a reason when the Istio target is not used.
    """
    for intent, view in subject_resilience(subject):
        if intent.model.spec.local_rate_limit is not None:
            yield Finding(
                intent.key_span("localRateLimit"),
                f"{_subject(intent, view)}: localRateLimit is used by the Envoy target only; "
                "on Istio it is not applied",
                "use circuitBreaker.maxRequests/maxPendingRequests for a limit both targets apply, "
                "or suppress with a reason if only the Envoy target is used",
            )
