"""Placement: where each workload instance and its sidecar listen — an explicit input of
the Envoy backend, beside `now` and the rollout state.

The compiler never chooses addresses: `meshd up` allocates them for a local mesh, and
elsewhere they come from the intents' `versions.*.endpoints`. A placement names every
instance the Envoy backend builds a snapshot for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from compiler.model.mesh import MeshModel, ServiceKey


@dataclass(frozen=True, slots=True, order=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class InstancePlacement:
    """Where one instance (service × version × index) listens."""

    service: ServiceKey
    version: str
    """The version name, or "" for a service that declares no versions."""
    index: int
    inbound: Mapping[int, Address] = field(default_factory=dict)
    """Service port → where this instance's sidecar accepts mTLS (what EDS hands callers)."""
    app: Mapping[int, Address] = field(default_factory=dict)
    """Service port → where the local application listens (the inbound route's target)."""
    outbound: Address | None = None
    """The sidecar's outbound HTTP listener the application calls through (the `Host`
    header names the destination); None when the service declares no calls."""
    tcp_outbound: Mapping[tuple[ServiceKey, int], Address] = field(default_factory=dict)
    """(called service, TCP port) → a dedicated outbound listener (TCP has no Host)."""

    @property
    def node_id(self) -> str:
        """Envoy's `node.id`: `<service>.<namespace>~<version>~<index>`."""
        return f"{self.service.name}.{self.service.namespace}~{self.version}~{self.index}"

    @property
    def cluster(self) -> str:
        """Envoy's `node.cluster`: `<service>.<namespace>`."""
        return f"{self.service.name}.{self.service.namespace}"


Placement = Mapping[str, InstancePlacement]
"""Node id → the instance it stands for."""


OUTBOUND_PORT = 15001
"""Where a derived placement puts each instance's outbound HTTP listener (Istio's
outbound capture port), on 127.0.0.1 beside the application."""
TCP_OUTBOUND_BASE = 15101
"""The first port of a derived placement's per-callee TCP outbound listeners."""
TCP_EXTERNAL = frozenset({"tcp", "tls"})
"""External protocols the application reaches through a dedicated TCP listener."""


def placement_from_endpoints(model: MeshModel) -> Placement:
    """The placement the intents' `versions.<v>.endpoints` describe.

    Each endpoint `host:port` is one instance (its index is the endpoint's position). Its
    sidecar accepts mTLS for the service's first declared port at `host:port` and for the
    n-th declared port at `host:port+n` (a multi-port service takes consecutive ports).
    The application shares the host with its sidecar, as in a pod: it listens on
    127.0.0.1 at each port's container port (`targetPort`). The application calls out
    through 127.0.0.1:15001 (HTTP, any callee by `Host`) and, for each TCP callee port in
    sorted order, through 127.0.0.1:15101, 15102, … A service that declares no versions
    has nowhere to list endpoints, so it has no instances here.
    """
    placement: dict[str, InstancePlacement] = {}
    for key in sorted(model.services):
        view = model.services[key]
        ports = view.spec.ports
        tcp = _tcp_callees(model, view.calls)
        for version in sorted(view.spec.versions):
            for index, endpoint in enumerate(view.spec.versions[version].endpoints):
                host, _, port = endpoint.rpartition(":")
                base = int(port)
                instance = InstancePlacement(
                    service=key,
                    version=version,
                    index=index,
                    inbound={int(p.port): Address(host, base + n) for n, p in enumerate(ports)},
                    app={int(p.port): Address("127.0.0.1", int(p.container_port)) for p in ports},
                    outbound=Address("127.0.0.1", OUTBOUND_PORT) if view.calls else None,
                    tcp_outbound={
                        callee: Address("127.0.0.1", TCP_OUTBOUND_BASE + n)
                        for n, callee in enumerate(tcp)
                    },
                )
                placement[instance.node_id] = instance
    return placement


def _tcp_callees(model: MeshModel, calls: tuple[ServiceKey, ...]) -> list[tuple[ServiceKey, int]]:
    """(callee, port) of every TCP port among `calls` (Services' tcp ports, Externals'
    tcp and tls ports), sorted."""
    found: set[tuple[ServiceKey, int]] = set()
    for callee in calls:
        service = model.services.get(callee)
        if service is not None:
            found.update((callee, int(p.port)) for p in service.spec.ports if p.protocol == "tcp")
            continue
        external = model.externals.get(callee)
        if external is not None:
            found.update(
                (callee, int(p.port)) for p in external.spec.ports if p.protocol in TCP_EXTERNAL
            )
    return sorted(found)
