"""LDS: one inbound listener per service port (mutual TLS required, then RBAC, then the
local application), one outbound HTTP listener the application calls through (routing on
`Host`), and one outbound listener per TCP destination port (TCP has no `Host`).

Listeners change only when the ports or the placement do: access rules and routes live
in RDS (see `rbac`), so a policy edit never drains a connection.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from compiler.lower.envoy.common import MeshSettings, ads, pack, socket_address
from compiler.lower.envoy.rbac import PortAccess, http_filters, network_filters
from compiler.lower.envoy.secrets import downstream_mtls
from compiler.model.placement import Address
from compiler.model.records import PortRecord

HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
ROUTER = "envoy.filters.http.router"


def inbound_listener(
    name: str,
    port: PortRecord,
    address: Address,
    settings: MeshSettings,
    access: PortAccess,
    app_cluster: str,
) -> listener_pb2.Listener:
    """Mutual TLS (a mesh certificate required), then HTTP with RDS and RBAC, or for a
    TCP port the network RBAC filters and a TCP proxy to the application."""
    if port.protocol == "tcp":
        filters = network_filters(access, stat_prefix=f"inbound_{port.port}")
        filters.append(_tcp_proxy(f"inbound_{port.port}", app_cluster))
        alpn: tuple[str, ...] = ()
    else:
        manager = hcm.HttpConnectionManager(
            stat_prefix=f"inbound_{port.port}",
            codec_type=hcm.HttpConnectionManager.AUTO,
            rds=hcm.Rds(route_config_name=name, config_source=ads()),
            http_filters=[*http_filters(), _router()],
            forward_client_cert_details=hcm.HttpConnectionManager.SANITIZE_SET,
            set_current_client_cert_details=hcm.HttpConnectionManager.SetCurrentClientCertDetails(
                uri=True
            ),
        )
        filters = [listener_components_pb2.Filter(name=HCM, typed_config=pack(manager))]
        alpn = ("h2", "http/1.1")
    chain = listener_components_pb2.FilterChain(
        filters=filters, transport_socket=downstream_mtls(settings, alpn=alpn)
    )
    return listener_pb2.Listener(
        name=name,
        address=socket_address(address),
        filter_chains=[chain],
        traffic_direction=base_pb2.INBOUND,
    )


def outbound_http_listener(name: str, address: Address) -> listener_pb2.Listener:
    """The application's HTTP egress: the route configuration `name` picks the
    destination by `Host` (an undeclared one has no route: 404)."""
    manager = hcm.HttpConnectionManager(
        stat_prefix="outbound_http",
        codec_type=hcm.HttpConnectionManager.AUTO,
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


def _router() -> hcm.HttpFilter:
    return hcm.HttpFilter(name=ROUTER, typed_config=pack(router_pb2.Router()))
