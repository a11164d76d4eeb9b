"""What every Envoy emitter shares: the mesh settings they read, resource names, the ADS
config source, typed-config packing and durations.

Names are decided here only, so a listener, the route it points at and the cluster a
route targets always agree, and so that a name never depends on anything but the
destination it stands for (a change touches only what changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from envoy.config.core.v3 import address_pb2, config_source_pb2
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message

from compiler.kinds.common import duration_ms
from compiler.model.mesh import ServiceKey
from compiler.model.placement import Address

UNLIMITED = 2**32 - 1
"""A circuit-breaker threshold nobody reaches: Istio's value for limits left unset
(Envoy's own defaults, 1,024, would break circuits nobody declared)."""

CONNECT_TIMEOUT_MS = 10_000
"""Istio's default connect timeout for outbound clusters."""


@dataclass(frozen=True, slots=True)
class MeshSettings:
    """The mesh-wide settings the Envoy emitters read."""

    trust_domain: str
    cluster_domain: str
    default_action: Literal["deny", "allow"]

    def fqdn(self, key: ServiceKey) -> str:
        """A service's cluster-local FQDN, the host its clusters are named after."""
        return f"{key.name}.{key.namespace}.svc.{self.cluster_domain}"


def outbound_cluster_name(port: int, version: str, host: str) -> str:
    """`outbound|<port>|<version>|<host>`: one destination version (`version` "" for every
    instance of the host), named as Istio names its clusters."""
    return f"outbound|{port}|{version}|{host}"


def inbound_cluster_name(port: int) -> str:
    """`inbound|<port>||`: the local application behind service port `port`."""
    return f"inbound|{port}||"


def inbound_listener_name(port: int) -> str:
    """The inbound listener (and its route configuration) of service port `port`."""
    return f"inbound|{port}"


OUTBOUND_HTTP = "outbound|http"
"""The outbound HTTP listener and its route configuration (routing on `Host`)."""


def tcp_outbound_listener_name(port: int, host: str) -> str:
    """The dedicated outbound listener for one TCP destination port."""
    return f"outbound|tcp|{port}|{host}"


def ads() -> config_source_pb2.ConfigSource:
    """Every dynamic resource and secret comes over the node's one ADS stream."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def pack(message: Message) -> any_pb2.Any:
    """A typed config, packed as Envoy's `typed_config` fields want it."""
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def duration(text: str) -> duration_pb2.Duration:
    """A user duration (`2s`, `500ms`, `1m30s`) as a protobuf Duration."""
    return millis(duration_ms(text))


def millis(ms: float) -> duration_pb2.Duration:
    whole = int(ms)
    nanos = round((ms - whole) * 1_000_000)
    return duration_pb2.Duration(seconds=whole // 1000, nanos=(whole % 1000) * 1_000_000 + nanos)


def socket_address(address: Address) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=address.host, port_value=address.port)
    )
