"""LDS: one inbound listener per service port (mutual TLS required, then RBAC, then the
local application), one outbound HTTP listener the application calls through (routing on
`Host`), and one outbound listener per TCP destination port (TCP has no `Host`).

Listeners change only when the ports or the placement do: access rules and routes live
in RDS (see `rbac`), so a policy edit never drains a connection.
"""

from __future__ import annotations

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import wrappers_pb2

from compiler.lower.envoy.common import MeshSettings, ads, pack, socket_address
from compiler.lower.envoy.rate_limit import http_filter as rate_limit_filter
from compiler.lower.envoy.rbac import PortAccess, http_filters, network_filters
from compiler.lower.envoy.secrets import downstream_mtls
from compiler.model.placement import Address
from compiler.model.records import PortRecord

HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
ROUTER = "envoy.filters.http.router"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"


def inbound_listener(
    name: str,
    port: PortRecord,
    address: Address,
    settings: MeshSettings,
    access: PortAccess,
    app_cluster: str,
    *,
    permissive: bool = False,
) -> listener_pb2.Listener:
    """Mutual TLS (a mesh certificate required), then HTTP with RDS, RBAC and the local
    rate limit (paths normalised first, as Istio does, so `/a/../b` is judged as `/b`),
    or for a TCP port the network RBAC filters and a TCP proxy to the application.
    `permissive` (a live permissive-mTLS window) adds a plaintext filter
    chain beside the mTLS one, told apart by the TLS inspector; a plaintext caller has no
    identity, so only rules admitting anyone without one could let it through (none
    do: RBAC here always asks for an authenticated peer)."""
    if port.protocol == "tcp":
        filters = network_filters(access, stat_prefix=f"inbound_{port.port}")
        filters.append(_tcp_proxy(f"inbound_{port.port}", app_cluster))
        alpn: tuple[str, ...] = ()
    else:
        manager = hcm.HttpConnectionManager(
            stat_prefix=f"inbound_{port.port}",
            codec_type=hcm.HttpConnectionManager.AUTO,
            upgrade_configs=_upgrades(),
            rds=hcm.Rds(route_config_name=name, config_source=ads()),
            http_filters=[*http_filters(), rate_limit_filter(), _router()],
            normalize_path=wrappers_pb2.BoolValue(value=True),
            forward_client_cert_details=hcm.HttpConnectionManager.SANITIZE_SET,
            set_current_client_cert_details=hcm.HttpConnectionManager.SetCurrentClientCertDetails(
                uri=True
            ),
            local_reply_config=_denial_detail(),
        )
        filters = [listener_components_pb2.Filter(name=HCM, typed_config=pack(manager))]
        alpn = ("h2", "http/1.1")
    chain = listener_components_pb2.FilterChain(
        filters=filters, transport_socket=downstream_mtls(settings, alpn=alpn)
    )
    listener = listener_pb2.Listener(
        name=name,
        address=socket_address(address),
        filter_chains=[chain],
        traffic_direction=base_pb2.INBOUND,
    )
    if permissive:
        listener.filter_chains[0].filter_chain_match.transport_protocol = "tls"
        plaintext = listener_components_pb2.FilterChain(
            name="plaintext",
            filter_chain_match=listener_components_pb2.FilterChainMatch(
                transport_protocol="raw_buffer"
            ),
        )
        plaintext.filters.extend(filters)
        listener.filter_chains.append(plaintext)
        listener.listener_filters.append(
            listener_components_pb2.ListenerFilter(
                name=TLS_INSPECTOR, typed_config=pack(tls_inspector_pb2.TlsInspector())
            )
        )
    return listener


def outbound_http_listener(name: str, address: Address) -> listener_pb2.Listener:
    """The application's HTTP egress: the route configuration `name` picks the
    destination by `Host` (an undeclared one has no route: 404)."""
    manager = hcm.HttpConnectionManager(
        stat_prefix="outbound_http",
        codec_type=hcm.HttpConnectionManager.AUTO,
        upgrade_configs=_upgrades(),
        rds=hcm.Rds(route_config_name=name, config_source=ads()),
        http_filters=[_router()],
    )
    chain = listener_components_pb2.FilterChain(
        filters=[listener_components_pb2.Filter(name=HCM, typed_config=pack(manager))]
    )
    return listener_pb2.Listener(
        name=name,
        address=socket_address(address),
        filter_chains=[chain],
        traffic_direction=base_pb2.OUTBOUND,
    )


def tcp_outbound_listener(
    name: str, address: Address, weights: list[tuple[str, int]]
) -> listener_pb2.Listener:
    """One TCP destination port: a TCP proxy to its cluster, or weighted across the
    clusters of its versions."""
    stat = name.replace("|", "_")
    if len(weights) == 1:
        proxy = _tcp_proxy(stat, weights[0][0])
    else:
        split = tcp_proxy_pb2.TcpProxy.WeightedCluster(
            clusters=[
                tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(name=cluster, weight=weight)
                for cluster, weight in weights
            ]
        )
        proxy = listener_components_pb2.Filter(
            name=TCP_PROXY,
            typed_config=pack(tcp_proxy_pb2.TcpProxy(stat_prefix=stat, weighted_clusters=split)),
        )
    chain = listener_components_pb2.FilterChain(filters=[proxy])
    return listener_pb2.Listener(
        name=name,
        address=socket_address(address),
        filter_chains=[chain],
        traffic_direction=base_pb2.OUTBOUND,
    )


def _tcp_proxy(stat_prefix: str, cluster: str) -> listener_components_pb2.Filter:
    return listener_components_pb2.Filter(
        name=TCP_PROXY,
        typed_config=pack(tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix, cluster=cluster)),
    )


def _upgrades() -> list[hcm.HttpConnectionManager.UpgradeConfig]:
    """WebSocket upgrades pass (as in Istio): a call that upgrades is still routed and
    judged by RBAC like any request."""
    return [hcm.HttpConnectionManager.UpgradeConfig(upgrade_type="websocket")]


def _router() -> hcm.HttpFilter:
    return hcm.HttpFilter(name=ROUTER, typed_config=pack(router_pb2.Router()))


DENIED_BY = "x-meshd-denied-by"
"""The header an RBAC 403 carries with Envoy's detail (`rbac_access_denied_matched_policy
[<policy>]`), so a caller (`meshd call`) can name the rule that refused it."""


def _denial_detail() -> hcm.LocalReplyConfig:
    """On a 403 the sidecar itself answers (RBAC), say which policy matched; a 403 the
    application sends is not a local reply and passes untouched."""
    forbidden = accesslog_pb2.StatusCodeFilter(
        comparison=accesslog_pb2.ComparisonFilter(
            op=accesslog_pb2.ComparisonFilter.EQ,
            value=base_pb2.RuntimeUInt32(default_value=403, runtime_key="meshc.rbac.denied_status"),
        )
    )
    header = base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=DENIED_BY, value="%RESPONSE_CODE_DETAILS%")
    )
    mapper = hcm.ResponseMapper(
        filter=accesslog_pb2.AccessLogFilter(status_code_filter=forbidden),
        headers_to_add=[header],
    )
    return hcm.LocalReplyConfig(mappers=[mapper])
