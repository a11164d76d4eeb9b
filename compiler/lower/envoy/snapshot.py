"""One proxy's xDS snapshot: the Envoy v3 resources a node is served, by type and name.

This is the contract between the Envoy backend (which builds snapshots, purely, from the
effective records and the placement) and the reconciler's xds target (which serves them
over ADS). Secrets are named only: a snapshot says which SDS names a node may fetch and
what each stands for; the xds target fills them from the key store, so the compiler
stays keyless.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from google.protobuf.message import Message

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINTS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

RESOURCE_TYPES = (LISTENER, ROUTE, CLUSTER, ENDPOINTS)
"""The types a snapshot carries itself, in the order ADS should push them (CDS before
EDS, LDS before RDS: Envoy's documented make-before-break order)."""

WORKLOAD_CERTIFICATE = "default"
"""SDS name of a node's own certificate and key (Istio uses the same name)."""
TRUST_BUNDLE = "ROOTCA"
"""SDS name of the validation context: the mesh's trust bundle."""


@dataclass(frozen=True, slots=True)
class SecretRef:
    """What an SDS name stands for; the xds target resolves it for the node it serves."""

    kind: Literal["certificate", "trust-bundle"]
    identity: str
    """certificate: the SPIFFE ID the certificate is issued for; trust-bundle: the trust
    domain whose roots it carries."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one node (one workload instance) is served."""

    node_id: str
    """Envoy's `node.id`; the xds target serves this snapshot to that node only."""
    cluster: str
    """Envoy's `node.cluster` (`<service>.<namespace>`)."""
    identity: str
    """The SPIFFE ID the node runs as: its certificate's URI SAN, and what the xds target
    checks the node's credential against before serving anything."""
    resources: Mapping[str, Mapping[str, Message]]
    """Type URL (one of RESOURCE_TYPES) → resource name → resource."""
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)
    """SDS names the node may fetch (WORKLOAD_CERTIFICATE, TRUST_BUNDLE)."""

    def version(self, type_url: str) -> str:
        """A stable version of one type's resources: equal resources, equal version."""
        digest = hashlib.sha256()
        for name, resource in sorted(self.resources.get(type_url, {}).items()):
            digest.update(name.encode())
            digest.update(b"\0")
            digest.update(resource.SerializeToString(deterministic=True))
            digest.update(b"\0")
        return digest.hexdigest()[:16]
