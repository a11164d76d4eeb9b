"""Whom an AccessPolicy rule source admits: the one answer lint, the graphs, the meaning
and every backend share.

`resolve_source` turns a source as written (`service`, `namespace`, `identity`, `*`,
`ingressGateway`: `true` for any of the mesh's ingress gateways, or one by name) into the
peer it names (for people) and the principal it matches at
runtime (for proxies). Nothing else in meshc interprets a source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compiler.kinds.access_policy.model import Source
from compiler.kinds.mesh.model import MeshSpec, ResolvedGateway
from compiler.model.mesh import MeshModel, ServiceKey

PeerKind = Literal["service", "namespace", "identity", "any", "ingress"]


@dataclass(frozen=True, slots=True)
class Principal:
    """What a source matches at runtime: any identity, a namespace, or one SPIFFE ID."""

    kind: Literal["any", "namespace", "id"]
    value: str


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    """A rule source resolved against the model."""

    peer: PeerKind
    label: str
    """The peer as people read it: a service key, a namespace, a SPIFFE ID, `*`."""
    principal: Principal
    service: ServiceKey | None = None
    """The service a `service:` source names (declared or not)."""
    declared: bool = True
    """False for a `service:` source naming no declared service, or an `ingressGateway`
    source naming no gateway of the mesh: its principal then matches no caller (the
    reference rules report it; backends fail closed)."""
    gateways: tuple[ResolvedGateway, ...] = ()
    """The ingress gateways an `ingressGateway` source stands for."""
    also: tuple[Principal, ...] = ()
    """The identities of the gateways after the first (`principal` is the first's)."""

    @property
    def principals(self) -> tuple[Principal, ...]:
        """Every principal the source matches: one, or one per gateway it stands for."""
        return (self.principal, *self.also)


def resolve_source(source: Source, namespace: str, model: MeshModel) -> ResolvedSource:
    """`source` of a rule in a policy of `namespace`, resolved against `model`."""
    if source.ingress_gateway:
        return resolve_gateways(source.ingress_gateway, model)
    if source.is_wildcard:
        return ResolvedSource("any", "*", Principal("any", "*"))
    if source.service:
        key = ServiceKey.parse(source.service, namespace)
        view = model.services.get(key)
        if view is not None:
            return ResolvedSource("service", str(key), Principal("id", view.spiffe_id), key)
        nobody = Principal("id", f"undeclared:{key}")
        return ResolvedSource("service", str(key), nobody, key, declared=False)
    if source.namespace:
        return ResolvedSource(
            "namespace", source.namespace, Principal("namespace", source.namespace)
        )
    spiffe = spiffe_of(source.identity or "", model)
    return ResolvedSource("identity", spiffe, Principal("id", spiffe))


def spiffe_of(identity: str, model: MeshModel) -> str:
    """An `identity` source (`ns/sa` or a SPIFFE ID) as a SPIFFE ID."""
    if identity.startswith("spiffe://"):
        return identity
    namespace, account = identity.split("/", 1)
    return model.spiffe(namespace, account)


def resolve_gateways(named: bool | str, model: MeshModel) -> ResolvedSource:
    """An `ingressGateway` source: `true` stands for every gateway of the mesh, a name for
    that gateway. Naming none (an unknown name, or a mesh without gateways) it matches
    no caller, like an undeclared service."""
    gateways = gateways_named(named, model.settings)
    label = GATEWAY_LABEL if named is True else f"{GATEWAY_LABEL}:{named}"
    if not gateways:
        return ResolvedSource("ingress", label, Principal("id", f"undeclared:{label}"), None, False)
    first, *rest = (Principal("id", gateway_spiffe(model, g)) for g in gateways)
    return ResolvedSource("ingress", label, first, gateways=gateways, also=tuple(rest))


GATEWAY_LABEL = "ingress-gateway"
"""How people read an `ingressGateway: true` source (`ingress-gateway:<name>` for one)."""


def gateways_named(named: bool | str, settings: MeshSpec) -> tuple[ResolvedGateway, ...]:
    """The mesh's gateways an `ingressGateway` value stands for."""
    gateways = settings.ingress_gateways
    if named is True:
        return gateways
    return tuple(gateway for gateway in gateways if gateway.name == named)


def gateway_spiffe(model: MeshModel, gateway: ResolvedGateway) -> str:
    return model.spiffe(gateway.namespace, gateway.service_account)


def gateway_spiffes(model: MeshModel) -> dict[str, ResolvedGateway]:
    """SPIFFE ID → the gateway running as it, for every ingress gateway of the mesh."""
    return {gateway_spiffe(model, g): g for g in model.settings.ingress_gateways}


def spiffe_namespace(spiffe: str) -> str | None:
    """The namespace of a Kubernetes-shaped SPIFFE ID (`spiffe://td/ns/<ns>/sa/<sa>`)."""
    parts = spiffe.split("/")
    if len(parts) == 7 and parts[3] == "ns" and parts[5] == "sa":
        return parts[4]
    return None
