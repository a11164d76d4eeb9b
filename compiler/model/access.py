"""Whom an AccessPolicy rule source admits: the one answer lint, the graphs, the meaning
and every backend share.

`resolve_source` turns a source as written (`service`, `namespace`, `identity`, `*`,
`ingressGateway`) into the peer it names (for people) and the principal it matches at
runtime (for proxies). Nothing else in meshc interprets a source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compiler.kinds.access_policy.model import Source
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
    """False for a `service:` source naming no declared service: its principal then
    matches no caller (the reference rules report it; backends fail closed)."""


def resolve_source(source: Source, namespace: str, model: MeshModel) -> ResolvedSource:
    """`source` of a rule in a policy of `namespace`, resolved against `model`."""
    if source.ingress_gateway:
        return ResolvedSource("ingress", "ingress-gateway", Principal("id", gateway_spiffe(model)))
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


def gateway_spiffe(model: MeshModel) -> str:
    gateway = model.settings.ingress_gateway
    return model.spiffe(gateway.namespace, gateway.service_account)


def spiffe_namespace(spiffe: str) -> str | None:
    """The namespace of a Kubernetes-shaped SPIFFE ID (`spiffe://td/ns/<ns>/sa/<sa>`)."""
    parts = spiffe.split("/")
    if len(parts) == 7 and parts[3] == "ns" and parts[5] == "sa":
        return parts[4]
    return None
