"""Resilience: timeouts, retries, circuit breaking and load balancing for one service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compiler.kinds.bounds import (
    Duration,
    DurationOrZero,
    Int32Count,
    Int32Limit,
    Int32Percentage,
    UInt32Count,
)
from compiler.kinds.common import IntentModel, Metadata, Ref

RETRY_ON_TOKENS = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
"""Envoy's router and gRPC retry conditions, as Istio's `retryOn` accepts them."""

RETRY_AFTER_UPSTREAM = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "retriable-4xx",
        "retriable-status-codes",
        "retriable-headers",
        "deadline-exceeded",
        "internal",
        "unavailable",
        "cancelled",
        "resource-exhausted",
    }
)
"""Conditions that may fire after the upstream received the request (unsafe for POST)."""

ISTIO_DEFAULT_ATTEMPTS = 2
"""Istio's retry policy for an HTTP route that declares none: 2 retries, 3 tries a call."""

ISTIO_DEFAULT_RETRY_ON = (
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
)
"""What Istio retries on when no retry policy, or one without `retryOn`, is declared."""


class Retries(IntentModel):
    attempts: Int32Count = Field(description="retries after the first try, as in Istio")
    per_try_timeout: Duration | None = None
    retry_on: list[str] = Field(default_factory=list)
    non_idempotent: bool = Field(
        default=False, description="opt in to retrying POST/PATCH after they reached the server"
    )


class CircuitBreaker(IntentModel):
    max_connections: Int32Limit | None = None
    max_pending_requests: Int32Limit | None = None
    max_requests: Int32Limit | None = None
    max_requests_per_connection: Int32Count | None = None
    max_retries: Int32Limit | None = None
    consecutive_5xx: UInt32Count | None = Field(default=None, alias="consecutive5xx")
    consecutive_gateway_errors: UInt32Count | None = None
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: Int32Percentage | None = None


class HashCookie(IntentModel):
    name: str = Field(min_length=1)
    ttl: DurationOrZero | None = None
    path: str | None = None


class ConsistentHash(IntentModel):
    header: str | None = None
    cookie: HashCookie | None = None
    source_ip: bool | None = Field(default=None, alias="sourceIP")

    @model_validator(mode="after")
    def _exactly_one(self) -> ConsistentHash:
        if (
            sum(
                v is not None and v is not False for v in (self.header, self.cookie, self.source_ip)
            )
            != 1
        ):
            raise ValueError("give exactly one hash key: header, cookie or sourceIP: true")
        return self


class HashLoadBalancer(IntentModel):
    consistent_hash: ConsistentHash


SimpleLoadBalancer = Literal["round-robin", "least-request", "random"]


class LocalRateLimit(IntentModel):
    requests: int = Field(ge=1)
    per: Duration


class ResilienceSpec(IntentModel):
    service: Ref
    port: int | None = Field(default=None, description="apply to this service port only")
    timeout: Duration | None = None
    retries: Retries | None = None
    circuit_breaker: CircuitBreaker | None = None
    load_balancer: SimpleLoadBalancer | HashLoadBalancer | None = None
    local_rate_limit: LocalRateLimit | None = Field(
        default=None, description="Envoy target only; Istio v1 has no field for it"
    )


class ResilienceDocument(IntentModel):
    api_version: Literal["meshc/v1"]
    kind: Literal["Resilience"]
    metadata: Metadata
    spec: ResilienceSpec
