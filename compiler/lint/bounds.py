"""The range rules: every bounded field (`compiler.kinds.bounds`) against every target.

No rule here names a field. Each walks the validated documents of its subject with
`bounded_values`, so a field is checked because its type is `Duration`, `Percentage`,
`Int32Count`..., and the limits come from the targets registered in
`compiler.kinds.bounds` (importing `compiler.lint.istio_limits` registers Istio's).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from compiler.diagnostics import Severity
from compiler.kinds.bounds import (
    Bound,
    BoundedValue,
    CountBound,
    DurationBound,
    PercentBound,
    WidthBound,
    bounded_values,
    registered_targets,
)
from compiler.kinds.common import duration_ms, format_ms
from compiler.lint import istio_limits as _istio  # noqa: F401  (registers Istio's limits)
from compiler.lint.registry import Finding, subject_rule
from compiler.lint.subjects import Subject, SubjectContext
from compiler.validate import Intent

B = TypeVar("B", bound=Bound)
Located = tuple[Intent[Any], BoundedValue, B]


def _bounded(subject: Subject, kind: type[B]) -> Iterator[Located[B]]:
    """Every value of the subject's documents whose bound is a `kind`, with that bound."""
    for intent in subject.intents():
        for found in bounded_values(intent.model):
            if isinstance(found.bound, kind):
                yield intent, found, found.bound


def _served(subject: Subject, kind: type[B]) -> Iterator[Located[B]]:
    """As `_bounded`, for a subject whose service is declared (the counts' messages name
    the service, as the lowering would)."""
    if subject.view is not None:
        yield from _bounded(subject, kind)


def _document(intent: Intent[Any]) -> str:
    """`Resilience shop/ratings`: the document, for rules that may report undeclared
    services' documents too."""
    meta = intent.model.metadata
    return f"{intent.doc.kind} {meta.namespace}/{meta.name}"


def _service(subject: Subject, intent: Intent[Any]) -> str:
    """`shop/ratings port 9080`: the service (and port) the setting applies to."""
    port = getattr(intent.model.spec, "port", None)
    return f"{subject.key} port {port}" if isinstance(port, int) else str(subject.key)


def _dotted(found: BoundedValue) -> str:
    """The field as written under `spec` (`retries.perTryTimeout`, `steps[0].pause`)."""
    path = found.path[1:] if found.path[:1] == ("spec",) else found.path
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _span_of(intent: Intent[Any], found: BoundedValue) -> Any:
    return intent.doc.span(*found.path)


@subject_rule("MC605", "duration-below-1ms", Severity.ERROR)
def duration_below_minimum(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A duration in a Resilience or Rollout is shorter than 1 ms (including `0s`).

    **What it does.** Checks every duration a proxy applies (timeouts, per-try timeouts,
    outlier-detection intervals and ejection times, rate-limit windows, cookie TTLs, where
    0 is allowed: a session cookie, and the pauses and analysis windows of rollout steps)
    against the shortest duration each target accepts: 1 ms for Istio.

    **Why is this bad.** Istio's CRDs reject these durations below 1 ms (their CEL rules say
    "must be a valid duration greater than 1ms"), so the compiled objects would not apply;
    in rollout steps a zero pause or window is almost always a missing unit or a typo.

    **Example.** `timeout: 0s`, `perTryTimeout: 0.5ms`

    **Use instead.** `timeout: 2s`; leave a field out to keep the default.
    """
    for intent, found, bound in _bounded(subject, DurationBound):
        ms = duration_ms(found.value)
        for target in registered_targets():
            shortest = format_ms(target.duration_min_ms)
            if ms < target.duration_min_ms and not (bound.zero_allowed and ms == 0):
                yield Finding(
                    _span_of(intent, found),
                    f"{_document(intent)}: {_dotted(found)} {found.value} is below {shortest}",
                    f"write a duration of at least {shortest}, or leave the field out",
                )


@subject_rule("MC606", "percentage-out-of-range", Severity.ERROR)
def percentage_out_of_range(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A percentage (`maxEjectionPercent`, an analysis `successRate`) is outside 0-100.

    **What it does.** Checks every percentage: `circuitBreaker.maxEjectionPercent` of
    Resilience and `steps[].analysis.successRate` of Rollouts (mirror percentages are
    MC506).

    **Why is this bad.** Ejecting more than 100 % of hosts, or requiring more than 100 %
    successful responses, has no meaning: Istio rejects the first, and the second makes every
    analysis fail so the rollout always aborts.

    **Example.** `maxEjectionPercent: 150`, `analysis: {successRate: 995}`

    **Use instead.** `maxEjectionPercent: 50`, `analysis: {successRate: 99.5}`
    """
    for intent, found, _ in _bounded(subject, PercentBound):
        if not 0 <= found.value <= 100:
            yield Finding(
                _span_of(intent, found),
                f"{_document(intent)}: {_dotted(found)} {_number(found.value)} is outside 0-100",
                "write a percentage between 0 and 100",
            )


@subject_rule("MC608", "non-positive-count", Severity.ERROR)
def non_positive_count(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A count is negative, or zero where Istio reads zero as "unset".

    **What it does.** Checks every count (≥ 0: `retries.attempts`,
    `maxRequestsPerConnection`, `consecutive5xx`, `consecutiveGatewayErrors`) and every
    limit (the connection-pool limits `maxConnections`, `maxPendingRequests`,
    `maxRequests` and `maxRetries`: ≥ 1 on targets that read 0 as unset, as Istio does).

    **Why is this bad.** Negative counts are rejected by Istio and Envoy. Worse, a zero
    connection-pool limit is indistinguishable from "not set" in Istio's API and becomes the
    default of 2³²-1: `maxConnections: 0`, meant to shut traffic off, removes the limit.

    **Example.** `circuitBreaker: {maxConnections: 0}`, `retries: {attempts: -1}`

    **Use instead.** `maxConnections: 1` (or a real limit), `attempts: 0` to disable retries.
    """
    for intent, found, bound in _served(subject, CountBound):
        where = f"{_service(subject, intent)}: {_dotted(found)} {found.value}"
        unset = [t for t in registered_targets() if bound.zero_is_limit and t.zero_limit_unset]
        if unset and found.value < 1:
            names = "/".join(t.name for t in unset)
            yield Finding(
                _span_of(intent, found),
                f"{where} is below 1 ({names} reads 0 as unset, i.e. unlimited)",
                "write a limit of at least 1, or leave the field out for no limit",
            )
        elif found.value < 0:
            yield Finding(_span_of(intent, found), f"{where} is negative", "write 0 or more")


@subject_rule("MC610", "duration-too-long", Severity.ERROR)
def duration_too_long(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A duration in a Resilience or Rollout is longer than a Go duration can hold (~292 years).

    **What it does.** Checks the same durations as MC605 against the longest duration each
    target accepts: for Istio 2562047h (106,751 days), the largest duration Go's int64
    nanoseconds represent.

    **Why is this bad.** Istio and the Kubernetes API server parse durations into Go's
    `time.Duration`: a longer one overflows, the CRD's CEL rule cannot evaluate it and the
    object is rejected.

    **Example.** `timeout: 200000d`

    **Use instead.** A realistic bound (`timeout: 24h`), or leave the field out.
    """
    for intent, found, _ in _bounded(subject, DurationBound):
        ms = duration_ms(found.value)
        for target in registered_targets():
            if ms > target.duration_max_ms:
                hours = target.duration_max_ms // 3_600_000
                days = target.duration_max_ms // 86_400_000
                yield Finding(
                    _span_of(intent, found),
                    f"{_document(intent)}: {_dotted(found)} {found.value} is longer than "
                    f"{target.duration_max_source} holds ({hours:.0f}h)",
                    f"write a duration below {days:.0f}d, or leave the field out",
                )


@subject_rule("MC611", "count-too-large", Severity.ERROR)
def count_too_large(ctx: SubjectContext, subject: Subject) -> Iterable[Finding]:
    """A count is larger than the Istio field it lowers to can hold.

    **What it does.** Checks every count against the range of the target field it lowers
    to: for Istio 2147483647 (int32) for `retries.attempts`, the connection-pool limits
    and `maxEjectionPercent`, 4294967295 (uint32) for `consecutive5xx` and
    `consecutiveGatewayErrors`.

    **Why is this bad.** The CRD or Istio's API conversion rejects the out-of-range number,
    so the compiled object does not apply.

    **Example.** `circuitBreaker: {maxConnections: 3000000000}`

    **Use instead.** A real limit (`maxConnections: 1000`), or leave the field out for
    Istio's default (no limit).
    """
    for intent, found, bound in _served(subject, WidthBound):
        for target in registered_targets():
            limit = target.int_max[bound.width]
            if found.value > limit:
                yield Finding(
                    _span_of(intent, found),
                    f"{_service(subject, intent)}: {_dotted(found)} {found.value} is larger "
                    f"than {target.name}'s field holds ({limit})",
                    f"write at most {limit}, or leave the field out",
                )
