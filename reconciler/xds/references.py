"""The names a node will subscribe to once it holds its clusters and listeners.

Envoy asks for endpoints, routes and secrets only after it has accepted the clusters and
listeners that name them, in a request that follows the ACK. Until those requests arrive,
the node has not applied its snapshot, even if it has answered everything it was sent:
`Session.settled` uses these names to tell the two apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.core.v3.base_pb2 import TransportSocket
from envoy.config.core.v3.config_source_pb2 import ConfigSource
from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3.secret_pb2 import SdsSecretConfig
from envoy.extensions.transport_sockets.tls.v3.tls_pb2 import (
    CommonTlsContext,
    DownstreamTlsContext,
    UpstreamTlsContext,
)
from google.protobuf.message import Message

from compiler.lower.envoy.snapshot import CLUSTER, ENDPOINTS, LISTENER, ROUTE, SECRET

Dependency = tuple[str, str]
"""(the type subscribed later, the type whose resources name it)."""


def expected_names(resources: Mapping[str, Mapping[str, Message]]) -> dict[Dependency, set[str]]:
    """EDS names from clusters, RDS names from listeners, SDS names from both (only those
    fetched over ADS: another config source is not ours to wait for)."""
    found: dict[Dependency, set[str]] = {
        (ENDPOINTS, CLUSTER): set(),
        (SECRET, CLUSTER): set(),
        (ROUTE, LISTENER): set(),
        (SECRET, LISTENER): set(),
    }
    for cluster in resources.get(CLUSTER, {}).values():
        if not isinstance(cluster, Cluster):
            continue
        eds = cluster.eds_cluster_config
        if cluster.type == Cluster.EDS and _ads(eds.eds_config):
            found[(ENDPOINTS, CLUSTER)].add(eds.service_name or cluster.name)
        sockets = [
            cluster.transport_socket,
            *(m.transport_socket for m in cluster.transport_socket_matches),
        ]
        found[(SECRET, CLUSTER)] |= _secret_names(sockets)
    for listener in resources.get(LISTENER, {}).values():
        if not isinstance(listener, Listener):
            continue
        chains = [*listener.filter_chains]
        if listener.HasField("default_filter_chain"):
            chains.append(listener.default_filter_chain)
        found[(SECRET, LISTENER)] |= _secret_names(chain.transport_socket for chain in chains)
        for chain in chains:
            for network_filter in chain.filters:
                found[(ROUTE, LISTENER)] |= _route_names(network_filter.typed_config)
    return found


def _ads(source: ConfigSource) -> bool:
    return bool(source.HasField("ads"))


def _route_names(config: Message) -> set[str]:
    manager = hcm_pb2.HttpConnectionManager()
    if not config.Is(manager.DESCRIPTOR):
        return set()
    config.Unpack(manager)
    if manager.HasField("rds") and _ads(manager.rds.config_source):
        return {manager.rds.route_config_name}
    return set()


def _secret_names(sockets: Iterable[TransportSocket]) -> set[str]:
    names: set[str] = set()
    for socket in sockets:
        for context_type in (DownstreamTlsContext, UpstreamTlsContext):
            context = context_type()
            if socket.typed_config.Is(context.DESCRIPTOR):
                socket.typed_config.Unpack(context)
                names |= _common_secret_names(context.common_tls_context)
    return names


def _common_secret_names(common: CommonTlsContext) -> set[str]:
    configs: list[SdsSecretConfig] = [*common.tls_certificate_sds_secret_configs]
    if common.HasField("validation_context_sds_secret_config"):
        configs.append(common.validation_context_sds_secret_config)
    combined = common.combined_validation_context
    if combined.HasField("validation_context_sds_secret_config"):
        configs.append(combined.validation_context_sds_secret_config)
    return {config.name for config in configs if _ads(config.sds_config)}
