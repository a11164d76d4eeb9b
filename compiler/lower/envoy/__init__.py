"""The Envoy backend: the effective records and the placement → one xDS snapshot per
workload instance (see `snapshot.Snapshot`).

Engine queries, so a re-lower after a small change rebuilds only the snapshots whose
recorded reads changed: `envoy_snapshots(db)` (node id → snapshot), `node_output(db,
node_id)` (one node's snapshot and findings), `envoy_findings(db)` (what could not be
lowered, for any node) and `envoy_artifacts(db)` (every resource of every node as plain
JSON, keyed by type, node and name, for render, plan and the golden tests).

The placement is the engine input `("placement", None)`: where instances listen, given by
the caller (`meshd up` allocates it), or None to derive it from the intents'
`versions.*.endpoints` (`compiler.model.placement.placement_from_endpoints`).
"""

from __future__ import annotations

from collections.abc import Mapping

from compiler.artifacts import ArtifactKey, Artifacts
from compiler.engine import Engine
from compiler.lower.envoy.common import MeshSettings
from compiler.lower.envoy.dump import resource_json
from compiler.lower.envoy.node import Callee, NodeOutput, build_node
from compiler.lower.envoy.snapshot import RESOURCE_TYPES, Snapshot
from compiler.model.mesh import ServiceKey
from compiler.model.placement import InstancePlacement, Placement, placement_from_endpoints
from compiler.model.queries import (
    MeshReader,
    external_view,
    mesh_document,
    now,
    service_view,
    settings,
)
from compiler.model.records import service_record

__all__ = [
    "envoy_artifacts",
    "envoy_findings",
    "envoy_placement",
    "envoy_snapshots",
    "node_output",
]


def mesh_settings(db: Engine) -> MeshSettings:
    spec = db.query(settings)
    return MeshSettings(spec.trust_domain, spec.cluster_domain, spec.default_action)


def envoy_placement(db: Engine) -> Placement:
    """The placement given as input, else the one the intents' endpoints describe."""
    given: Placement | None = db.input("placement", None)
    if given is not None:
        return given
    return placement_from_endpoints(MeshReader(db))


def instances_by_service(db: Engine) -> Mapping[ServiceKey, tuple[InstancePlacement, ...]]:
    """Service → its placed instances, by node id."""
    placement = db.query(envoy_placement)
    found: dict[ServiceKey, list[InstancePlacement]] = {}
    for node in sorted(placement):
        found.setdefault(placement[node].service, []).append(placement[node])
    return {key: tuple(instances) for key, instances in found.items()}


def service_instances(db: Engine, key: ServiceKey) -> tuple[InstancePlacement, ...]:
    """The placed instances of one service (a query of its own, so a node that calls
    `key` is rebuilt only when `key`'s instances move)."""
    return db.query(instances_by_service).get(key, ())


def node_instance(db: Engine, node_id: str) -> InstancePlacement | None:
    return db.query(envoy_placement).get(node_id)


def node_output(db: Engine, node_id: str) -> NodeOutput | None:
    """One node's snapshot and findings; None when no declared Service stands behind it."""
    instance = db.query(node_instance, node_id)
    if instance is None or db.query(service_view, instance.service) is None:
        return None
    record = db.query(service_record, instance.service)
    callees: list[Callee] = []
    for key in sorted(set(record.view.calls)):
        if db.query(service_view, key) is not None:
            callees.append(db.query(service_record, key))
        else:
            external = db.query(external_view, key)
            if external is not None:
                callees.append(external)
    return build_node(
        instance,
        record,
        db.query(mesh_settings),
        callees,
        lambda callee: db.query(service_instances, callee),
        permissive=db.query(permissive_mtls, instance.service),
    )


def permissive_mtls(db: Engine, key: ServiceKey) -> bool:
    """Whether a live permissive-mTLS window (mesh-wide, or an exception naming `key`)
    covers the service at the compilation's `now`; an expired one is not lowered."""
    mtls = db.query(settings).mtls
    windows = [mtls.until] if mtls.mode == "permissive" else []
    mesh_namespace = db.query(mesh_namespace_of)
    windows.extend(
        exception.until
        for exception in mtls.exceptions
        if ServiceKey.parse(exception.service, mesh_namespace) == key
    )
    if not any(until is not None for until in windows):
        return False
    moment = db.query(now)
    return any(until is not None and until > moment for until in windows)


def mesh_namespace_of(db: Engine) -> str:
    """The namespace a bare service name in the Mesh document refers to."""
    mesh = db.query(mesh_document)
    return mesh.model.metadata.namespace if mesh is not None else "default"


def envoy_snapshots(db: Engine) -> Mapping[str, Snapshot]:
    """Node id → its snapshot, by node id."""
    out: dict[str, Snapshot] = {}
    for node in sorted(db.query(envoy_placement)):
        built = db.query(node_output, node)
        if built is not None:
            out[node] = built.snapshot
    return out


def envoy_findings(db: Engine) -> tuple[str, ...]:
    """What the snapshots leave out, sorted: mesh settings without an Envoy form, placed
    instances of no declared Service, and each node's own findings."""
    found: set[str] = set()
    mesh = db.query(mesh_document)
    if mesh is not None and mesh.model.spec.outbound_traffic_policy == "ALLOW_ANY":
        span = mesh.key_span("outboundTrafficPolicy")
        found.add(
            f"{span.file}:{span.line}:{span.col}: envoy: outboundTrafficPolicy ALLOW_ANY has no "
            "form here: a sidecar routes only the calls its service declares (others get 404)"
        )
    placement = db.query(envoy_placement)
    for node in sorted(placement):
        built = db.query(node_output, node)
        if built is None:
            found.add(
                f"placement: node {node}: no Service {placement[node].service} is declared; "
                "no snapshot"
            )
        else:
            found.update(built.findings)
    return tuple(sorted(found))


def envoy_artifacts(db: Engine) -> Artifacts:
    """Every resource of every snapshot as JSON, keyed (type, node id, name)."""
    pairs = []
    for node, snapshot in db.query(envoy_snapshots).items():
        for type_url in RESOURCE_TYPES:
            package, _, kind = type_url.removeprefix("type.googleapis.com/").rpartition(".")
            for name, resource in snapshot.resources.get(type_url, {}).items():
                pairs.append((ArtifactKey(package, kind, node, name), resource_json(resource)))
    return Artifacts.of_keyed(pairs)
