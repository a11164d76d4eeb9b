"""Lint rules about Resilience documents (and the durations/percentages of Rollouts)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator

from compiler.diagnostics import Severity, Span
from compiler.kinds.common import duration_ms
from compiler.kinds.references import undeclared_service
from compiler.kinds.resilience.chains import RetryHop, analyse
from compiler.kinds.resilience.model import (
    RETRY_AFTER_UPSTREAM,
    RETRY_ON_TOKENS,
    HashLoadBalancer,
    ResilienceDocument,
)
from compiler.kinds.rollout.model import RolloutDocument
from compiler.lint.registry import Finding, LintContext, rule, subject_rule
from compiler.lint.subjects import Subject, SubjectContext, subject_resilience, subject_views
from compiler.model.mesh import MeshModel, ServiceKey, ServiceView
from compiler.model.methods import ALL_METHODS, is_unrestricted, non_idempotent_methods
from compiler.validate import Intent

ResilienceIntent = Intent[ResilienceDocument]
Path = tuple[str | int, ...]

STATUS_CODE = re.compile(r"^[1-5][0-9][0-9]$")
"""Istio accepts HTTP status codes in `retryOn` (they become retriable status codes)."""

ISTIO_DEFAULT_RETRY_ON = (
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
)
"""What Istio retries on when a retry policy gives no `retryOn`."""


def resolved_resilience(model: MeshModel) -> Iterator[tuple[ResilienceIntent, ServiceView]]:
    """Every Resilience whose service exists, with that service (the others are MC221's)."""
    for intent in model.resilience:
        view = model.service(intent.model.spec.service, intent.model.metadata.namespace)
        if view is not None:
            yield intent, view


def format_ms(ms: float) -> str:
    """A duration in the unit a human would write it in (`250ms`, `1.5s`, `2m`)."""
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{ms / size:g}{unit}"
    return f"{ms:g}ms"


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
    routes (and their retries) come from the VirtualService bound to the gateway, which
    meshc does not write, so a Resilience here could not change them."""
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
    ingress gateway may send, since the gateway's retries come from its own VirtualService,
    which meshc does not write. MC601 is the same check for retries a Resilience declares.

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
    are never retried. A chain whose product exceeds `Mesh.spec.retryBudget` (default 10)
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


def _subject_durations(
    subject: Subject,
) -> list[tuple[Intent[ResilienceDocument] | Intent[RolloutDocument], Path, str]]:
    """Every duration the subject's Resilience and Rollout documents write (MC605, MC610)."""
    found: list[tuple[Intent[ResilienceDocument] | Intent[RolloutDocument], Path, str]] = []
    found.extend(
        (i, path, value) for i in subject.resilience for path, value in _resilience_durations(i)
    )
    found.extend(
        (i, path, value) for i in subject.rollouts for path, value in _rollout_durations(i)
    )
    return found


def _resilience_durations(intent: ResilienceIntent) -> Iterator[tuple[Path, str]]:
    spec = intent.model.spec
    if spec.timeout is not None:
        yield ("timeout",), spec.timeout
    if spec.retries is not None and spec.retries.per_try_timeout is not None:
        yield ("retries", "perTryTimeout"), spec.retries.per_try_timeout
    breaker = spec.circuit_breaker
    if breaker is not None:
        if breaker.interval is not None:
            yield ("circuitBreaker", "interval"), breaker.interval
        if breaker.base_ejection_time is not None:
            yield ("circuitBreaker", "baseEjectionTime"), breaker.base_ejection_time
    if spec.local_rate_limit is not None:
        yield ("localRateLimit", "per"), spec.local_rate_limit.per
    balancer = spec.load_balancer
    if isinstance(balancer, HashLoadBalancer):
        cookie = balancer.consistent_hash.cookie
        # ttl 0 is meaningful (a session cookie); only a positive sub-millisecond ttl is wrong
        if cookie is not None and cookie.ttl is not None and duration_ms(cookie.ttl) > 0:
            yield ("loadBalancer", "consistentHash", "cookie", "ttl"), cookie.ttl


def _rollout_durations(intent: Intent[RolloutDocument]) -> Iterator[tuple[Path, str]]:
    for i, step in enumerate(intent.model.spec.steps or []):
        if step.pause is not None:
            yield ("steps", i, "pause"), step.pause
        if step.analysis is not None:
            if step.analysis.max_latency is not None:
                yield ("steps", i, "analysis", "maxLatency"), step.analysis.max_latency
            yield ("steps", i, "analysis", "interval"), step.analysis.interval


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


@subject_rule("MC605", "duration-below-1ms", Severity.ERROR)
def duration_below_1ms(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A duration in a Resilience or Rollout is shorter than 1 ms (including `0s`).

    **What it does.** Checks timeouts, per-try timeouts, outlier-detection intervals and
    ejection times, rate-limit windows, cookie TTLs (0 is allowed there: a session cookie),
    and the pauses and analysis windows of rollout steps.

    **Why is this bad.** Istio's CRDs reject these durations below 1 ms (their CEL rules say
    "must be a valid duration greater than 1ms"), so the compiled objects would not apply;
    in rollout steps a zero pause or window is almost always a missing unit or a typo.

    **Example.** `timeout: 0s`, `perTryTimeout: 0.5ms`

    **Use instead.** `timeout: 2s`; leave a field out to keep the default.
    """
    for intent, path, value in _subject_durations(subject):
        if duration_ms(value) < 1:
            meta = intent.model.metadata
            yield Finding(
                intent.span(*path),
                f"{intent.doc.kind} {meta.namespace}/{meta.name}: "
                f"{_dotted(path)} {value} is below 1ms",
                "write a duration of at least 1ms, or leave the field out",
            )


@subject_rule("MC606", "percentage-out-of-range", Severity.ERROR)
def percentage_out_of_range(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A percentage (`maxEjectionPercent`, an analysis `successRate`) is outside 0-100.

    **What it does.** Checks `circuitBreaker.maxEjectionPercent` of Resilience and
    `steps[].analysis.successRate` of Rollouts (mirror percentages are MC506).

    **Why is this bad.** Ejecting more than 100 % of hosts, or requiring more than 100 %
    successful responses, has no meaning: Istio rejects the first, and the second makes every
    analysis fail so the rollout always aborts.

    **Example.** `maxEjectionPercent: 150`, `analysis: {successRate: 995}`

    **Use instead.** `maxEjectionPercent: 50`, `analysis: {successRate: 99.5}`
    """
    for intent in subject.resilience:
        breaker = intent.model.spec.circuit_breaker
        value = breaker.max_ejection_percent if breaker else None
        if value is not None and not 0 <= value <= 100:
            yield Finding(
                intent.span("circuitBreaker", "maxEjectionPercent"),
                f"Resilience {intent.model.metadata.namespace}/{intent.model.metadata.name}: "
                f"maxEjectionPercent {value} is outside 0-100",
                "write a percentage of hosts between 0 and 100",
            )
    for rollout in subject.rollouts:
        for i, step in enumerate(rollout.model.spec.steps or []):
            rate = step.analysis.success_rate if step.analysis else None
            if rate is not None and not 0 <= rate <= 100:
                yield Finding(
                    rollout.span("steps", i, "analysis", "successRate"),
                    f"Rollout {rollout.model.metadata.namespace}/{rollout.model.metadata.name}: "
                    f"step {i} successRate {rate:g} is outside 0-100",
                    "write the minimum % of non-5xx responses, e.g. 99.5",
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


_AT_LEAST_ONE = ("maxConnections", "maxPendingRequests", "maxRequests", "maxRetries")
"""Istio reads 0 in these int32 fields as unset, i.e. its default (effectively unlimited)."""
_NOT_NEGATIVE = ("maxRequestsPerConnection", "consecutive5xx", "consecutiveGatewayErrors")
"""0 is meaningful here: unlimited requests per connection; ejection on that error disabled."""


@subject_rule("MC608", "non-positive-count", Severity.ERROR)
def non_positive_count(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A count is negative, or zero where Istio reads zero as "unset".

    **What it does.** Checks `retries.attempts` (≥ 0), the connection-pool limits
    `maxConnections`, `maxPendingRequests`, `maxRequests` and `maxRetries` (≥ 1), and
    `maxRequestsPerConnection`, `consecutive5xx` and `consecutiveGatewayErrors` (≥ 0).

    **Why is this bad.** Negative counts are rejected by Istio and Envoy. Worse, a zero
    connection-pool limit is indistinguishable from "not set" in Istio's API and becomes the
    default of 2³²-1: `maxConnections: 0`, meant to shut traffic off, removes the limit.

    **Example.** `circuitBreaker: {maxConnections: 0}`, `retries: {attempts: -1}`

    **Use instead.** `maxConnections: 1` (or a real limit), `attempts: 0` to disable retries.
    """
    for intent, view in subject_resilience(subject):
        spec = intent.model.spec
        if spec.retries is not None and spec.retries.attempts < 0:
            yield Finding(
                intent.span("retries", "attempts"),
                f"{_subject(intent, view)}: retries.attempts {spec.retries.attempts} is negative",
                "write the number of retries after the first try; 0 disables retries",
            )
        breaker = spec.circuit_breaker
        if breaker is None:
            continue
        values = breaker.model_dump(by_alias=True)
        for field in _AT_LEAST_ONE:
            value = values.get(field)
            if value is not None and value < 1:
                yield Finding(
                    intent.span("circuitBreaker", field),
                    f"{_subject(intent, view)}: circuitBreaker.{field} {value} is below 1 "
                    "(Istio reads 0 as unset, i.e. unlimited)",
                    "write a limit of at least 1, or leave the field out for no limit",
                )
        for field in _NOT_NEGATIVE:
            value = values.get(field)
            if value is not None and value < 0:
                yield Finding(
                    intent.span("circuitBreaker", field),
                    f"{_subject(intent, view)}: circuitBreaker.{field} {value} is negative",
                    "write 0 or more",
                )


MAX_DURATION_MS = (2**63 - 1) / 1_000_000
"""Go's `time.Duration` (int64 nanoseconds), which Istio and Kubernetes' CEL parse into:
about 106,751 days."""


@subject_rule("MC610", "duration-too-long", Severity.ERROR)
def duration_too_long(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A duration in a Resilience or Rollout is longer than a Go duration can hold (~292 years).

    **What it does.** Checks the same durations as MC605 against 2562047h (106,751 days),
    the largest duration Go's int64 nanoseconds represent.

    **Why is this bad.** Istio and the Kubernetes API server parse durations into Go's
    `time.Duration`: a longer one overflows, the CRD's CEL rule cannot evaluate it and the
    object is rejected.

    **Example.** `timeout: 200000d`

    **Use instead.** A realistic bound (`timeout: 24h`), or leave the field out.
    """
    for intent, path, value in _subject_durations(subject):
        if duration_ms(value) > MAX_DURATION_MS:
            meta = intent.model.metadata
            yield Finding(
                intent.span(*path),
                f"{intent.doc.kind} {meta.namespace}/{meta.name}: "
                f"{_dotted(path)} {value} is longer than a Go duration holds (2562047h)",
                "write a duration below 106751d, or leave the field out",
            )


INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
_COUNT_LIMITS = {
    "maxConnections": INT32_MAX,
    "maxPendingRequests": INT32_MAX,
    "maxRequests": INT32_MAX,
    "maxRequestsPerConnection": INT32_MAX,
    "maxRetries": INT32_MAX,
    "maxEjectionPercent": INT32_MAX,
    "consecutive5xx": UINT32_MAX,
    "consecutiveGatewayErrors": UINT32_MAX,
}
"""The largest value of the Istio field each circuit-breaker count lowers to (int32 or
uint32 in Istio's API)."""


@subject_rule("MC611", "count-too-large", Severity.ERROR)
def count_too_large(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A count is larger than the Istio field it lowers to can hold.

    **What it does.** Checks `retries.attempts` and the circuit-breaker counts against the
    range of their Istio fields: 2147483647 (int32) for attempts and connection-pool limits,
    4294967295 (uint32) for `consecutive5xx` and `consecutiveGatewayErrors`.

    **Why is this bad.** The CRD or Istio's API conversion rejects the out-of-range number,
    so the compiled object does not apply.

    **Example.** `circuitBreaker: {maxConnections: 3000000000}`

    **Use instead.** A real limit (`maxConnections: 1000`), or leave the field out for
    Istio's default (no limit).
    """
    for intent, view in subject_resilience(subject):
        spec = intent.model.spec
        counts: list[tuple[Path, int, int]] = []
        if spec.retries is not None:
            counts.append((("retries", "attempts"), spec.retries.attempts, INT32_MAX))
        if spec.circuit_breaker is not None:
            values = spec.circuit_breaker.model_dump(by_alias=True)
            counts.extend(
                (("circuitBreaker", field), values[field], limit)
                for field, limit in _COUNT_LIMITS.items()
                if values.get(field) is not None
            )
        for path, value, limit in counts:
            if value > limit:
                yield Finding(
                    intent.span(*path),
                    f"{_subject(intent, view)}: {_dotted(path)} {value} is larger than "
                    f"Istio's field holds ({limit})",
                    f"write at most {limit}, or leave the field out",
                )
