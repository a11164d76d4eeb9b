"""Placement: where each workload instance and its sidecar listen — an explicit input of
the Envoy backend, beside `now` and the rollout state.

The compiler never chooses addresses: `meshd up` allocates them for a local mesh, and
elsewhere they come from the intents' `versions.*.endpoints`. A placement names every
instance the Envoy backend builds a snapshot for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from compiler.model.mesh import ServiceKey


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
