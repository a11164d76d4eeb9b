"""One node's snapshot: the inbound side of its own service, the outbound side of what it
declares in `calls:`, and what could not be lowered for it (findings, never dropped in
silence).

Pure: it reads the effective records, the node's placement and the instances of the
services it calls, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc
from google.protobuf.message import Message

from compiler.kinds.external.model import ExternalPort
from compiler.lower.envoy.cluster import app_cluster, external_cluster, mesh_cluster
from compiler.lower.envoy.common import (
    OUTBOUND_HTTP,
    MeshSettings,
    inbound_cluster_name,
    inbound_listener_name,
    outbound_cluster_name,
    tcp_outbound_listener_name,
)
from compiler.lower.envoy.endpoints import load_assignment
from compiler.lower.envoy.listener import (
    inbound_listener,
    outbound_http_listener,
    tcp_outbound_listener,
)
from compiler.lower.envoy.rate_limit import LOCAL_RATE_LIMIT, port_limit
from compiler.lower.envoy.rate_limit import per_route as rate_limit_route
from compiler.lower.envoy.rbac import per_route, port_access
from compiler.lower.envoy.route import (
    domains,
    external_virtual_host,
    inbound_route_config,
    outbound_route_config,
    service_virtual_host,
)
from compiler.lower.envoy.secrets import node_secrets
from compiler.lower.envoy.snapshot import CLUSTER, ENDPOINTS, LISTENER, ROUTE, Snapshot
from compiler.model.mesh import ExternalView, ServiceKey
from compiler.model.placement import InstancePlacement
from compiler.model.records import PortRecord, ServiceRecord
from compiler.validate import Intent

Callee = ServiceRecord | ExternalView
InstancesOf = Callable[[ServiceKey], Sequence[InstancePlacement]]

HTTP_EXTERNAL = frozenset({"http", "https", "grpc"})


@dataclass(frozen=True, slots=True)
class NodeOutput:
    snapshot: Snapshot
    findings: tuple[str, ...]
    """What this node's snapshot leaves out and why, each `file:line:col: message`."""


@dataclass(slots=True)
class _Builder:
    instance: InstancePlacement
    settings: MeshSettings
    resources: dict[str, dict[str, Message]] = field(
        default_factory=lambda: {LISTENER: {}, ROUTE: {}, CLUSTER: {}, ENDPOINTS: {}}
    )
    findings: list[str] = field(default_factory=list)
    hosts: list[rc.VirtualHost] = field(default_factory=list)
    domains: set[str] = field(default_factory=set)

    def add(self, type_url: str, name: str, resource: Message) -> None:
        self.resources[type_url][name] = resource

    def report(self, intent: Intent[Any], message: str) -> None:
        span = intent.span()
        self.findings.append(
            f"{span.file}:{span.line}:{span.col}: envoy ({self.instance.node_id}): {message}"
        )

    def virtual_host(self, intent: Intent[Any], host: rc.VirtualHost) -> None:
        """Keep `host` with the domains no earlier destination answers (Envoy refuses a
        route configuration where two virtual hosts share a domain)."""
        taken = [d for d in host.domains if d in self.domains]
        if taken:
            self.report(
                intent, f"{', '.join(taken)} already name another destination; dropped here"
            )
            kept = [d for d in host.domains if d not in self.domains]
            del host.domains[:]
            host.domains.extend(kept)
        if host.domains:
            self.domains.update(host.domains)
            self.hosts.append(host)


def build_node(
    instance: InstancePlacement,
    record: ServiceRecord,
    settings: MeshSettings,
    callees: Sequence[Callee],
    instances_of: InstancesOf,
    *,
    permissive: bool = False,
) -> NodeOutput:
    """`permissive`: a live permissive-mTLS window covers the node's service (its inbound
    listeners also accept plaintext)."""
    builder = _Builder(instance, settings)
    _inbound(builder, record, permissive=permissive)
    for callee in callees:
        if isinstance(callee, ServiceRecord):
            _mesh_callee(builder, record, callee, instances_of)
        else:
            _external_callee(builder, callee)
    outbound = instance.outbound
    if outbound is not None:
        builder.add(LISTENER, OUTBOUND_HTTP, outbound_http_listener(OUTBOUND_HTTP, outbound))
        builder.add(ROUTE, OUTBOUND_HTTP, outbound_route_config(OUTBOUND_HTTP, builder.hosts))
    elif builder.hosts:
        builder.report(
            record.view.intent,
            "the placement gives no outbound address, so its HTTP calls have no listener",
        )
    resources = {
        type_url: dict(sorted(named.items())) for type_url, named in builder.resources.items()
    }
    snapshot = Snapshot(
        node_id=instance.node_id,
        cluster=instance.cluster,
        identity=record.view.spiffe_id,
        resources=resources,
        secrets=node_secrets(record.view.spiffe_id, settings),
    )
    return NodeOutput(snapshot, tuple(builder.findings))


def _inbound(builder: _Builder, record: ServiceRecord, *, permissive: bool) -> None:
    """A listener, an application cluster and (HTTP) a route per service port."""
    instance = builder.instance
    for port in record.ports:
        address = instance.inbound.get(port.port)
        app = instance.app.get(port.port)
        if address is None or app is None:
            builder.report(
                record.view.intent,
                f"the placement gives port {port.port} no inbound or application address; "
                "the port is not served",
            )
            continue
        name = inbound_listener_name(port.port)
        cluster = inbound_cluster_name(port.port)
        access = port_access(record, builder.settings, port)
        listener = inbound_listener(
            name, port, address, builder.settings, access, cluster, permissive=permissive
        )
        builder.add(LISTENER, name, listener)
        builder.add(CLUSTER, cluster, app_cluster(cluster, port, app))
        if port.protocol != "tcp":
            overrides = per_route(access)
            limit = port_limit(record, port.port)
            if limit is not None:
                overrides[LOCAL_RATE_LIMIT] = rate_limit_route(limit)
            builder.add(ROUTE, name, inbound_route_config(name, cluster, overrides))
        elif port_limit(record, port.port) is not None:
            builder.report(
                record.view.intent,
                f"localRateLimit on TCP port {port.port}: the local rate limit counts HTTP "
                "requests; not applied to this port",
            )


def _mesh_callee(
    builder: _Builder, caller: ServiceRecord, callee: ServiceRecord, instances_of: InstancesOf
) -> None:
    key = callee.key
    settings = builder.settings
    fqdn = settings.fqdn(key)
    names = [f"{key.name}.{key.namespace}", f"{key.name}.{key.namespace}.svc", fqdn]
    if key.namespace == caller.key.namespace:
        names.insert(0, key.name)
    traffic = callee.traffic
    http_ports = [p for p in callee.ports if p.protocol != "tcp"]
    instances = instances_of(key)

    for port in callee.ports:

        def cluster_of(version: str, port: PortRecord = port) -> str:
            return outbound_cluster_name(port.port, version, fqdn)

        weights = traffic.weights if traffic.rollout is not None else ()
        versions = {version for version, _ in weights} or {""}
        if port.protocol == "tcp":
            address = builder.instance.tcp_outbound.get((key, port.port))
            if address is None:
                builder.report(
                    caller.view.intent,
                    f"the placement gives no outbound address for TCP {key}:{port.port}; "
                    "the call has no listener",
                )
                continue
            split = [(cluster_of(v), w) for v, w in weights] or [(cluster_of(""), 100)]
            name = tcp_outbound_listener_name(port.port, fqdn)
            builder.add(LISTENER, name, tcp_outbound_listener(name, address, split))
        else:
            versions.update(rule.version for rule in traffic.matches)
            if traffic.mirror is not None:
                versions.add(traffic.mirror.version)
            host = service_virtual_host(
                f"{fqdn}:{port.port}",
                domains(names, port.port, portless=port is http_ports[0]),
                port,
                weights=weights,
                matches=traffic.matches,
                mirror=traffic.mirror,
                cluster_of=cluster_of,
            )
            builder.virtual_host(caller.view.intent, host)
        for version in sorted(versions):
            name = cluster_of(version)
            builder.add(
                CLUSTER, name, mesh_cluster(name, port, identity=callee.view.spiffe_id, sni=fqdn)
            )
            members = [i for i in instances if not version or i.version == version]
            builder.add(ENDPOINTS, name, load_assignment(name, members, port.port))


def _external_callee(builder: _Builder, external: ExternalView) -> None:
    spec = external.spec
    intent = external.intent
    if spec.effective_resolution == "none":
        builder.report(
            intent,
            f"External {external.key}: resolution none (pass-through to the address dialled) "
            "has no Envoy form here; its hosts are not reachable from this node",
        )
        return
    http_ports = [p for p in spec.ports if p.protocol in HTTP_EXTERNAL]
    hosts = sorted(spec.hosts)
    for port in spec.ports:
        if port.protocol in HTTP_EXTERNAL:
            for host in hosts:
                _external_cluster(builder, external, port, host)
                builder.virtual_host(
                    intent,
                    external_virtual_host(
                        f"{host}:{port.port}",
                        domains([host], port.port, portless=port is http_ports[0]),
                        outbound_cluster_name(port.port, "", host),
                    ),
                )
            continue
        address = builder.instance.tcp_outbound.get((external.key, port.port))
        if address is None:
            builder.report(
                intent,
                f"the placement gives no outbound address for {port.protocol} "
                f"{external.key}:{port.port}; the call has no listener",
            )
            continue
        if len(hosts) > 1:
            builder.report(
                intent,
                f"{port.protocol} port {port.port} has several hosts and one outbound "
                f"address: only {hosts[0]} is reachable through it",
            )
        cluster = _external_cluster(builder, external, port, hosts[0])
        name = tcp_outbound_listener_name(port.port, hosts[0])
        builder.add(LISTENER, name, tcp_outbound_listener(name, address, [(cluster, 100)]))


def _external_cluster(
    builder: _Builder, external: ExternalView, port: ExternalPort, host: str
) -> str:
    name = outbound_cluster_name(port.port, "", host)
    builder.add(CLUSTER, name, external_cluster(name, external.spec, port, host))
    return name
