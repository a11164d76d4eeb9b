"""Service (+ Resilience) → DestinationRule.

One subset per version (the selector ANDed with the version's labels), Istio mutual TLS,
and the service's Resilience as `trafficPolicy`; a Resilience scoped to one port becomes
that port's `portLevelSettings` entry.
"""

from __future__ import annotations

from compiler.kinds.resilience.model import CircuitBreaker, HashLoadBalancer, ResilienceSpec
from compiler.lower.istio.common import (
    NETWORKING,
    LowerContext,
    Obj,
    host,
    istio_duration,
    new_object,
)
from compiler.model.records import ServiceRecord

SIMPLE_LB = {"round-robin": "ROUND_ROBIN", "least-request": "LEAST_REQUEST", "random": "RANDOM"}


def destination_rule(ctx: LowerContext, record: ServiceRecord) -> Obj:
    view = record.view
    obj = new_object(
        ctx,
        api_version=NETWORKING,
        kind="DestinationRule",
        name=view.key.name,
        namespace=view.key.namespace,
        source=view.intent.ref,
    )
    policy: Obj = {"tls": {"mode": "ISTIO_MUTUAL"}}
    whole = record.resilience
    if whole is not None:
        policy.update(traffic_settings(ctx, whole))
    per_port = [
        {"port": {"number": port}, "tls": {"mode": "ISTIO_MUTUAL"}, **traffic_settings(ctx, spec)}
        for port, spec in record.port_resilience
    ]
    if per_port:
        policy["portLevelSettings"] = per_port
    spec: Obj = {"host": host(ctx, view.key), "trafficPolicy": policy}
    versions = view.spec.versions
    if versions:
        spec["subsets"] = [
            {"name": name, "labels": dict(sorted(view.version_labels(name).items()))}
            for name in sorted(versions)
        ]
    obj["spec"] = spec
    return obj


def traffic_settings(ctx: LowerContext, spec: ResilienceSpec) -> Obj:
    """connectionPool, outlierDetection and loadBalancer of one Resilience."""
    out: Obj = {}
    if spec.circuit_breaker is not None:
        pool = connection_pool(spec.circuit_breaker)
        if pool:
            out["connectionPool"] = pool
        outlier = outlier_detection(spec.circuit_breaker)
        if outlier:
            out["outlierDetection"] = outlier
    if spec.load_balancer is not None:
        out["loadBalancer"] = load_balancer(spec.load_balancer)
    return out


def connection_pool(cb: CircuitBreaker) -> Obj:
    tcp: Obj = {}
    http: Obj = {}
    if cb.max_connections is not None:
        tcp["maxConnections"] = cb.max_connections
    if cb.max_pending_requests is not None:
        http["http1MaxPendingRequests"] = cb.max_pending_requests
    if cb.max_requests is not None:
        http["http2MaxRequests"] = cb.max_requests
    if cb.max_requests_per_connection is not None:
        http["maxRequestsPerConnection"] = cb.max_requests_per_connection
    if cb.max_retries is not None:
        http["maxRetries"] = cb.max_retries
    out: Obj = {}
    if tcp:
        out["tcp"] = tcp
    if http:
        out["http"] = http
    return out


def outlier_detection(cb: CircuitBreaker) -> Obj:
    out: Obj = {}
    if cb.consecutive_5xx is not None:
        out["consecutive5xxErrors"] = cb.consecutive_5xx
    if cb.consecutive_gateway_errors is not None:
        out["consecutiveGatewayErrors"] = cb.consecutive_gateway_errors
    if cb.interval is not None:
        out["interval"] = istio_duration(cb.interval)
    if cb.base_ejection_time is not None:
        out["baseEjectionTime"] = istio_duration(cb.base_ejection_time)
    if cb.max_ejection_percent is not None:
        out["maxEjectionPercent"] = cb.max_ejection_percent
    return out


def load_balancer(lb: str | HashLoadBalancer) -> Obj:
    if isinstance(lb, str):
        return {"simple": SIMPLE_LB[lb]}
    key = lb.consistent_hash
    if key.header is not None:
        return {"consistentHash": {"httpHeaderName": key.header}}
    if key.cookie is not None:
        cookie: Obj = {"name": key.cookie.name}
        if key.cookie.ttl is not None:
            cookie["ttl"] = istio_duration(key.cookie.ttl)
        if key.cookie.path is not None:
            cookie["path"] = key.cookie.path
        return {"consistentHash": {"httpCookie": cookie}}
    return {"consistentHash": {"useSourceIp": True}}
