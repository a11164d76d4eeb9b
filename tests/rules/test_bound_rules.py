"""The range rules (MC605, MC606, MC608, MC610, MC611) are driven by field types and target
limits: every bounded type is checked at the value the user wrote, a field given a bounded
type is checked without any rule naming it, and the limits are the registered targets'."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pydantic import Field

from compiler.api import Compilation
from compiler.kinds.bounds import (
    Duration,
    Int32Count,
    Int32Limit,
    Percentage,
    TargetLimits,
    UInt32Count,
    bounded_values,
)
from compiler.kinds.common import IntentModel
from compiler.kinds.resilience.model import ResilienceDocument, ResilienceSpec
from compiler.lint import bounds
from compiler.lint.registry import Finding
from compiler.lint.subjects import Subject, SubjectContext
from compiler.load.documents import classify_documents
from compiler.load.yamlnodes import parse_source
from compiler.model.mesh import ServiceKey
from compiler.validate import validate_document
from tests.helpers import compile_files, findings
from tests.rules import document, locate, where

SERVICE = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  ports: [{name: http, port: 9080, protocol: http}]
  versions: {v1: {labels: {version: v1}}, v2: {labels: {version: v2}}}
"""


def lint(kind: str, spec: str) -> tuple[str, Compilation]:
    text = document(kind, spec, name="ratings")
    return text, compile_files({"svc.yaml": SERVICE, "doc.yaml": text})


ROLLOUT = "service: ratings\nstable: v1\ncanary: v2\nsteps: [{weight: 100, %s}]\n"

# (bounded type, kind, spec, rule, the offending value as written, message)
OVER_THE_LIMIT = [
    (
        "Duration (below the minimum)",
        "Resilience",
        "service: ratings\ncircuitBreaker: {interval: 0.5ms}\n",
        "MC605",
        "0.5ms",
        "Resilience shop/ratings: circuitBreaker.interval 0.5ms is below 1ms",
    ),
    (
        "Duration (above the maximum)",
        "Rollout",
        ROLLOUT % "analysis: {maxLatency: 106752d}",
        "MC610",
        "106752d",
        "Rollout shop/ratings: steps[0].analysis.maxLatency 106752d is longer than a Go "
        "duration holds (2562047h)",
    ),
    (
        "DurationOrZero",
        "Resilience",
        "service: ratings\nloadBalancer: {consistentHash: {cookie: {name: u, ttl: 0.1ms}}}\n",
        "MC605",
        "0.1ms",
        "Resilience shop/ratings: loadBalancer.consistentHash.cookie.ttl 0.1ms is below 1ms",
    ),
    (
        "Duration (rate-limit window)",
        "Resilience",
        "service: ratings\nlocalRateLimit: {requests: 5, per: 200000d}\n",
        "MC610",
        "200000d",
        "Resilience shop/ratings: localRateLimit.per 200000d is longer than a Go duration "
        "holds (2562047h)",
    ),
    (
        "Percentage",
        "Rollout",
        ROLLOUT % "analysis: {successRate: 100.5}",
        "MC606",
        "100.5",
        "Rollout shop/ratings: steps[0].analysis.successRate 100.5 is outside 0-100",
    ),
    (
        "Int32Percentage",
        "Resilience",
        "service: ratings\ncircuitBreaker: {maxEjectionPercent: 2147483648}\n",
        "MC611",
        "2147483648",
        "shop/ratings: circuitBreaker.maxEjectionPercent 2147483648 is larger than Istio's "
        "field holds (2147483647)",
    ),
    (
        "Int32Count",
        "Resilience",
        "service: ratings\ncircuitBreaker: {maxRequestsPerConnection: 2147483648}\n",
        "MC611",
        "2147483648",
        "shop/ratings: circuitBreaker.maxRequestsPerConnection 2147483648 is larger than "
        "Istio's field holds (2147483647)",
    ),
    (
        "Int32Limit",
        "Resilience",
        "service: ratings\nport: 9080\ncircuitBreaker: {maxPendingRequests: 0}\n",
        "MC608",
        "0}",
        "shop/ratings port 9080: circuitBreaker.maxPendingRequests 0 is below 1 (Istio reads "
        "0 as unset, i.e. unlimited)",
    ),
    (
        "UInt32Count",
        "Resilience",
        "service: ratings\ncircuitBreaker: {consecutiveGatewayErrors: 4294967296}\n",
        "MC611",
        "4294967296",
        "shop/ratings: circuitBreaker.consecutiveGatewayErrors 4294967296 is larger than "
        "Istio's field holds (4294967295)",
    ),
]


@pytest.mark.parametrize(
    ("bounded", "kind", "spec", "code", "value", "message"),
    OVER_THE_LIMIT,
    ids=[case[0] for case in OVER_THE_LIMIT],
)
def test_each_bounded_type_is_checked_at_the_value_written(
    bounded: str, kind: str, spec: str, code: str, value: str, message: str
) -> None:
    text, compilation = lint(kind, spec)
    found = findings(compilation, code)
    assert [(d.message, where(d)) for d in found] == [
        (message, ("doc.yaml", *locate(text, value)))
    ], bounded


def test_values_at_the_limits_are_silent() -> None:
    spec = (
        "service: ratings\ntimeout: 106751d\n"
        "retries: {attempts: 2147483647, perTryTimeout: 1ms}\n"
        "circuitBreaker: {maxConnections: 1, maxRequestsPerConnection: 0,\n"
        "                 consecutive5xx: 4294967295, maxEjectionPercent: 100}\n"
        "loadBalancer: {consistentHash: {cookie: {name: u, ttl: 0s}}}\n"
    )
    _, compilation = lint("Resilience", spec)
    assert [d for d in compilation.diagnostics if d.code in RANGE_RULES] == []


RANGE_RULES = {"MC605", "MC606", "MC608", "MC610", "MC611"}


class DrainPolicy(IntentModel):
    """A field group no rule has heard of, with bounded fields in a list and a map."""

    timeout: Duration
    waves: list[Int32Limit] = Field(default_factory=list)
    share: dict[str, Percentage] = Field(default_factory=dict)


class ExtendedSpec(ResilienceSpec):
    idle_timeout: Duration | None = None
    max_streams: Int32Count | None = None
    ejections: UInt32Count | None = None
    drain: list[DrainPolicy] = Field(default_factory=list)


class ExtendedDocument(ResilienceDocument):
    spec: ExtendedSpec


EXTENDED = """\
apiVersion: meshc/v1
kind: Resilience
metadata: {name: ratings, namespace: shop}
spec:
  service: ratings
  idleTimeout: 0s
  maxStreams: -3
  ejections: 4294967296
  drain:
  - timeout: 5s
  - timeout: 200000d
    waves: [10, 0]
    share: {v1: 120}
"""


def _run(check: Any, subject: Subject) -> list[Finding]:
    return list(check(cast(Any, SubjectContext(cast(Any, None))), subject))


def test_a_field_given_a_bounded_type_is_checked_without_touching_the_rules() -> None:
    """`ExtendedSpec` adds fields (nested in lists and maps too) that no rule names:
    giving them bounded types is all it takes for every range rule to check them."""
    parsed = parse_source("res.yaml", EXTENDED.encode())
    documents, problems, _ = classify_documents(parsed, frozenset({"Resilience"}))
    assert problems == [] and len(documents) == 1
    intent, errors = validate_document(documents[0], ExtendedDocument)
    assert intent is not None, errors
    subject = Subject(ServiceKey("shop", "ratings"), None, {"Resilience": (intent,)})
    assert [(f.path, f.value) for f in bounded_values(intent.model)] == [
        (("spec", "idleTimeout"), "0s"),
        (("spec", "maxStreams"), -3),
        (("spec", "maxStreams"), -3),
        (("spec", "ejections"), 4294967296),
        (("spec", "ejections"), 4294967296),
        (("spec", "drain", 0, "timeout"), "5s"),
        (("spec", "drain", 1, "timeout"), "200000d"),
        (("spec", "drain", 1, "waves", 0), 10),
        (("spec", "drain", 1, "waves", 0), 10),
        (("spec", "drain", 1, "waves", 1), 0),
        (("spec", "drain", 1, "waves", 1), 0),
        (("spec", "drain", 1, "share", "v1"), 120),
    ]
    found = {
        code: [(f.message, (f.span.line, f.span.col)) for f in _run(check, subject)]
        for code, check in {
            "MC605": bounds.duration_below_minimum,
            "MC606": bounds.percentage_out_of_range,
            "MC610": bounds.duration_too_long,
        }.items()
    }
    assert found == {
        "MC605": [
            (
                "Resilience shop/ratings: idleTimeout 0s is below 1ms",
                locate(EXTENDED, "0s"),
            )
        ],
        "MC606": [
            (
                "Resilience shop/ratings: drain[1].share.v1 120 is outside 0-100",
                locate(EXTENDED, "120"),
            )
        ],
        "MC610": [
            (
                "Resilience shop/ratings: drain[1].timeout 200000d is longer than a Go "
                "duration holds (2562047h)",
                locate(EXTENDED, "200000d"),
            )
        ],
    }


def test_the_limits_are_the_registered_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second target with a narrower field is checked too, and named in its finding."""
    from compiler.kinds import bounds as kinds_bounds

    narrow = TargetLimits(
        name="Narrow",
        int_max={"int32": 1000, "uint32": 1000},
        duration_min_ms=1,
        duration_max_ms=86_400_000,
        duration_max_source="Narrow's timer",
        zero_limit_unset=False,
    )
    monkeypatch.setattr(kinds_bounds, "_TARGETS", dict(kinds_bounds._TARGETS))
    kinds_bounds.register_target(narrow)
    text, compilation = lint(
        "Resilience", "service: ratings\ntimeout: 2d\ncircuitBreaker: {maxConnections: 5000}\n"
    )
    assert [(d.message, where(d)) for d in findings(compilation, "MC611")] == [
        (
            "shop/ratings: circuitBreaker.maxConnections 5000 is larger than Narrow's field "
            "holds (1000)",
            ("doc.yaml", *locate(text, "5000")),
        )
    ]
    assert [d.message for d in findings(compilation, "MC610")] == [
        "Resilience shop/ratings: timeout 2d is longer than Narrow's timer holds (24h)"
    ]
    with pytest.raises(RuntimeError, match="registered twice"):
        kinds_bounds.register_target(
            TargetLimits("Istio", {"int32": 1, "uint32": 1}, 1, 2, "x", zero_limit_unset=True)
        )
