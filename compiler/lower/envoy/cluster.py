"""CDS: the clusters a node sends to — one per destination version it may route to, one
per External host it calls — and the local application behind each inbound port.

A mesh destination's cluster (`outbound|<port>|<version>|<fqdn>`, `<version>` empty for
every instance of a service without a Rollout) takes its endpoints over EDS, carries the
port's Resilience (circuit-breaker thresholds, outlier detection, load balancing) and
upstream mutual TLS accepting only the destination's SPIFFE ID. Limits the Resilience
leaves unset are unlimited and the load balancer defaults to least-request: Istio's
defaults, so the two backends behave alike.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import wrappers_pb2

from compiler.kinds.external.model import ExternalPort, ExternalSpec
from compiler.kinds.resilience.model import CircuitBreaker, HashLoadBalancer
from compiler.lower.envoy.common import (
    CONNECT_TIMEOUT_MS,
    UNLIMITED,
    ads,
    duration,
    millis,
    pack,
    socket_address,
)
from compiler.lower.envoy.secrets import upstream_mtls, upstream_origination
from compiler.model.placement import Address
from compiler.model.records import PortRecord

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP2_PROTOCOLS = frozenset({"grpc", "http2"})
SIMPLE_LB = {
    "round-robin": cluster_pb2.Cluster.ROUND_ROBIN,
    "least-request": cluster_pb2.Cluster.LEAST_REQUEST,
    "random": cluster_pb2.Cluster.RANDOM,
}


def mesh_cluster(name: str, port: PortRecord, *, identity: str, sni: str) -> cluster_pb2.Cluster:
    """One destination version of a mesh service, on service port `port`."""
    http2 = port.protocol in HTTP2_PROTOCOLS
    cluster = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(
            eds_config=ads(), service_name=name
        ),
        connect_timeout=millis(CONNECT_TIMEOUT_MS),
        lb_policy=_lb_policy(port.load_balancer),
        circuit_breakers=circuit_breakers(port.circuit_breaker),
        transport_socket=upstream_mtls(identity, sni, alpn=_alpn(port.protocol)),
    )
    outlier = outlier_detection(port.circuit_breaker)
    if outlier is not None:
        cluster.outlier_detection.CopyFrom(outlier)
    per_connection = (
        port.circuit_breaker.max_requests_per_connection if port.circuit_breaker else None
    )
    if port.protocol != "tcp":
        _http_options(cluster, http2=http2, max_requests_per_connection=per_connection)
    return cluster


def _alpn(protocol: str) -> tuple[str, ...]:
    """What the upstream TLS handshake offers: the port's HTTP version, nothing for TCP."""
    if protocol == "tcp":
        return ()
    return ("h2",) if protocol in HTTP2_PROTOCOLS else ("http/1.1",)


def app_cluster(name: str, port: PortRecord, app: Address) -> cluster_pb2.Cluster:
    """The local application behind one inbound port (plaintext, on the same host)."""
    cluster = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.STATIC,
        connect_timeout=millis(CONNECT_TIMEOUT_MS),
        load_assignment=static_assignment(name, [app]),
        circuit_breakers=circuit_breakers(None),
    )
    if port.protocol != "tcp":
        _http_options(
            cluster, http2=port.protocol in HTTP2_PROTOCOLS, max_requests_per_connection=None
        )
    return cluster


def external_cluster(
    name: str, spec: ExternalSpec, port: ExternalPort, host: str
) -> cluster_pb2.Cluster:
    """One host of an External on one port: resolved by DNS (`dns`) or the declared
    addresses (`static`); `https` gets TLS originated here (the application speaks plain
    HTTP to its sidecar), `grpc` HTTP/2."""
    if spec.effective_resolution == "static":
        kind = cluster_pb2.Cluster.STATIC
        targets = [Address(a.split("/")[0], port.port) for a in sorted(spec.addresses)]
    else:
        kind = cluster_pb2.Cluster.STRICT_DNS
        targets = [Address(host, port.port)]
    cluster = cluster_pb2.Cluster(
        name=name,
        type=kind,
        connect_timeout=millis(CONNECT_TIMEOUT_MS),
        load_assignment=static_assignment(name, targets),
        circuit_breakers=circuit_breakers(None),
    )
    if kind == cluster_pb2.Cluster.STRICT_DNS:
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
    if port.protocol == "https":
        cluster.transport_socket.CopyFrom(upstream_origination(host, alpn=("http/1.1",)))
    if port.protocol in ("http", "https", "grpc"):
        _http_options(cluster, http2=port.protocol == "grpc", max_requests_per_connection=None)
    return cluster


def static_assignment(name: str, targets: list[Address]) -> endpoint_pb2.ClusterLoadAssignment:
    endpoints = [
        endpoint_components_pb2.LbEndpoint(
            endpoint=endpoint_components_pb2.Endpoint(address=socket_address(target))
        )
        for target in targets
    ]
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name,
        endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=endpoints)],
    )


def _lb_policy(lb: str | HashLoadBalancer | None) -> int:
    if lb is None:
        return int(cluster_pb2.Cluster.LEAST_REQUEST)
    if isinstance(lb, str):
        return int(SIMPLE_LB[lb])
    return int(cluster_pb2.Cluster.RING_HASH)


def circuit_breakers(cb: CircuitBreaker | None) -> circuit_breaker_pb2.CircuitBreakers:
    """The default-priority thresholds; what the Resilience leaves unset is unlimited."""

    def limit(value: int | None) -> wrappers_pb2.UInt32Value:
        return wrappers_pb2.UInt32Value(value=UNLIMITED if value is None else value)

    given = cb or CircuitBreaker()
    return circuit_breaker_pb2.CircuitBreakers(
        thresholds=[
            circuit_breaker_pb2.CircuitBreakers.Thresholds(
                max_connections=limit(given.max_connections),
                max_pending_requests=limit(given.max_pending_requests),
                max_requests=limit(given.max_requests),
                max_retries=limit(given.max_retries),
            )
        ]
    )


def outlier_detection(cb: CircuitBreaker | None) -> outlier_detection_pb2.OutlierDetection | None:
    """Ejection on consecutive errors; a kind of error not declared is not enforced
    (Envoy would otherwise eject on 5 consecutive 5xx by default)."""
    if cb is None:
        return None
    fields = (
        cb.consecutive_5xx,
        cb.consecutive_gateway_errors,
        cb.interval,
        cb.base_ejection_time,
        cb.max_ejection_percent,
    )
    if all(value is None for value in fields):
        return None

    def count(value: int | None) -> wrappers_pb2.UInt32Value:
        return wrappers_pb2.UInt32Value(value=value or 0)

    def enforcing(value: int | None) -> wrappers_pb2.UInt32Value:
        return wrappers_pb2.UInt32Value(value=100 if value is not None else 0)

    out = outlier_detection_pb2.OutlierDetection(
        enforcing_consecutive_5xx=enforcing(cb.consecutive_5xx),
        enforcing_consecutive_gateway_failure=enforcing(cb.consecutive_gateway_errors),
        enforcing_success_rate=wrappers_pb2.UInt32Value(value=0),
    )
    if cb.consecutive_5xx is not None:
        out.consecutive_5xx.CopyFrom(count(cb.consecutive_5xx))
    if cb.consecutive_gateway_errors is not None:
        out.consecutive_gateway_failure.CopyFrom(count(cb.consecutive_gateway_errors))
    if cb.interval is not None:
        out.interval.CopyFrom(duration(cb.interval))
    if cb.base_ejection_time is not None:
        out.base_ejection_time.CopyFrom(duration(cb.base_ejection_time))
    if cb.max_ejection_percent is not None:
        out.max_ejection_percent.CopyFrom(wrappers_pb2.UInt32Value(value=cb.max_ejection_percent))
    return out


def _http_options(
    cluster: cluster_pb2.Cluster, *, http2: bool, max_requests_per_connection: int | None
) -> None:
    """The upstream HTTP version (HTTP/2 for grpc and http2 ports) and the requests one
    connection may carry."""
    explicit = http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig()
    if http2:
        explicit.http2_protocol_options.CopyFrom(protocol_pb2.Http2ProtocolOptions())
    else:
        explicit.http_protocol_options.CopyFrom(protocol_pb2.Http1ProtocolOptions())
    options = http_protocol_options_pb2.HttpProtocolOptions(explicit_http_config=explicit)
    if max_requests_per_connection:
        options.common_http_protocol_options.max_requests_per_connection.value = (
            max_requests_per_connection
        )
    cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(pack(options))
