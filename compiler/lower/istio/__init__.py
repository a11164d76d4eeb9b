"""The Istio backend: the resolved model → Kubernetes objects of Istio's v1 APIs.

One module per emitted object kind; this one groups their output into engine queries:
the mesh-wide objects (PeerAuthentications, the per-namespace allow-nothing policies), the
network default deny's NetworkPolicies, one group per service (its AuthorizationPolicies,
DestinationRule, Sidecar, VirtualService and NetworkPolicy) and one per External (its
ServiceEntry). The engine records what each group's emitters read, so
a one-file change re-lowers exactly the groups that read something it changed.
"""

from __future__ import annotations

from compiler.artifacts import ArtifactKey, Artifacts, Keyed
from compiler.engine import Engine
from compiler.lower.istio.authorization_policy import allow_nothing, for_service, gateway_allow
from compiler.lower.istio.common import LowerContext, Obj
from compiler.lower.istio.destination_rule import destination_rule
from compiler.lower.istio.gateway_network_policy import gateway_network_policies
from compiler.lower.istio.http_route import http_routes
from compiler.lower.istio.namespace_network_policy import namespace_default_deny
from compiler.lower.istio.network_policy import service_network_policy
from compiler.lower.istio.peer_authentication import lower_peer_authentications
from compiler.lower.istio.service_entry import service_entry
from compiler.lower.istio.sidecar import sidecar
from compiler.lower.istio.version_service import version_services
from compiler.lower.istio.virtual_service import gateway_virtual_services, virtual_service
from compiler.model.gateways import under_default_deny
from compiler.model.mesh import ServiceKey
from compiler.model.queries import MeshReader, RolloutSteps, externals, now, ordered_keys
from compiler.model.records import ServiceRecord, service_record

Group = tuple[Keyed, ...]


def context(db: Engine) -> LowerContext:
    return LowerContext(MeshReader(db), lambda: db.query(now), RolloutSteps(db))


def mesh_group(db: Engine) -> Group:
    """Objects that belong to no one service: mTLS mode and exceptions, and zero trust's
    allow-nothing policy in every namespace with services (with the ALLOW of each ingress
    gateway it reaches)."""
    ctx = context(db)
    out = lower_peer_authentications(ctx)
    if ctx.model.settings.default_action == "deny":
        out.extend(allow_nothing(ctx, namespace) for namespace in ctx.model.namespaces)
        out.extend(gateway_allows(ctx))
    return _keyed(out)


def network_group(db: Engine) -> Group:
    """Network default deny: each namespace's `meshc-default-deny`, and the NetworkPolicy
    of each ingress gateway it reaches (which reads every service it may route to, hence
    a group apart from the mesh-wide one)."""
    ctx = context(db)
    if not ctx.model.settings.network_policy.default_deny:
        return ()
    out = [namespace_default_deny(ctx, namespace) for namespace in ctx.model.namespaces]
    out.extend(gateway_network_policies(ctx))
    return _keyed(out)


def gateway_allows(ctx: LowerContext) -> list[Obj]:
    """The ALLOW of each ingress gateway meshc's allow-nothing reaches (else every request
    from outside gets 403 at the gateway pod)."""
    out = []
    for gateway in ctx.model.settings.ingress_gateways:
        allowed = gateway_allow(ctx, gateway) if under_default_deny(gateway, ctx.model) else None
        if allowed is not None:
            out.append(allowed)
    return out


def service_group(db: Engine, key: ServiceKey) -> Group:
    """One declared service's objects, from its effective record."""
    return _keyed(service_objects(context(db), db.query(service_record, key)))


def service_objects(ctx: LowerContext, record: ServiceRecord) -> list[Obj]:
    """A caller-only service (no ports) has no host: no DestinationRule or VirtualService."""
    view = record.view
    out = for_service(ctx, record)
    if not view.client_only:
        out.append(destination_rule(ctx, record))
    out.append(sidecar(ctx, view))
    routes = virtual_service(ctx, record) if not view.client_only else None
    if routes is not None:
        out.append(routes)
    out.extend(gateway_objects(ctx, record))
    network = service_network_policy(ctx, record)
    if network is not None:
        out.append(network)
    return out


def gateway_objects(ctx: LowerContext, record: ServiceRecord) -> list[Obj]:
    """The service's Rollout split for the ingress gateways that may call it: classic
    gateways through bound VirtualServices, Gateway API ones through HTTPRoutes to
    per-version Services."""
    out = gateway_virtual_services(ctx, record)
    out.extend(http_routes(ctx, record))
    out.extend(version_services(ctx, record))
    return out


def external_group(db: Engine, key: ServiceKey) -> Group:
    """One declared External's ServiceEntry."""
    ctx = context(db)
    return _keyed([service_entry(ctx, ctx.model.externals[key])])


def istio_artifacts(db: Engine) -> Artifacts:
    """Every emitted object: the mesh-wide groups, one group per service in key order,
    then one per External in key order."""
    groups = [db.query(mesh_group), db.query(network_group)]
    groups.extend(db.query(service_group, key) for key in db.query(ordered_keys))
    groups.extend(db.query(external_group, key) for key in sorted(db.query(externals)))
    return Artifacts.of_groups(groups)


def _keyed(objects: list[Obj]) -> Group:
    return tuple((ArtifactKey.of_kubernetes(obj), obj) for obj in objects)
