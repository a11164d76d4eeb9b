"""Rollout → Gateway API HTTPRoute: the split for traffic entering through a Gateway API
ingress gateway.

A Gateway of class `istio` routes by HTTPRoutes attached to it, never by the mesh's
VirtualServices, so a Rollout of a service such a gateway may call gets one HTTPRoute per
gateway, attached to the `Gateway` (`parentRefs`), for its `hosts` (none or `*`: every
hostname of the listeners). Its weighted `backendRefs` name Kubernetes Services, not DestinationRule
subsets: each version is reached through the per-version Service meshc emits beside it
(`version_service`). The route carries the weights at the rollout's current step only; A/B
matches and the mirror apply to mesh callers (lint says so where a Rollout has them).
"""

from __future__ import annotations

from compiler.kinds.mesh.model import ResolvedGateway
from compiler.lower.istio.common import LowerContext, Obj, new_object
from compiler.model.gateways import (
    gateway_http_ports,
    gateway_route_name,
    gateways_calling,
    split_binding,
    version_service_name,
)
from compiler.model.records import ServiceRecord

GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_GROUP = "gateway.networking.k8s.io"


def http_routes(ctx: LowerContext, record: ServiceRecord) -> list[Obj]:
    """One HTTPRoute per Gateway API gateway that may call the Rollout's service."""
    rollout = record.traffic.rollout
    if rollout is None:
        return []
    view = record.view
    out = []
    for gateway in gateways_calling(view, ctx.model):
        ports = gateway_http_ports(view, gateway, ctx.model)
        if split_binding(gateway) != "http-route" or not ports:
            continue
        obj = new_object(
            ctx,
            api_version=GATEWAY_API,
            kind="HTTPRoute",
            name=gateway_route_name(view, gateway),
            namespace=view.key.namespace,
            source=rollout.ref,
        )
        spec: Obj = {"parentRefs": [parent_ref(gateway)]}
        if gateway.hosts and "*" not in gateway.hosts:
            spec["hostnames"] = list(gateway.hosts)
        backends = [
            {"name": version_service_name(view, version), "port": ports[0], "weight": weight}
            for version, weight in record.traffic.weights
        ]
        spec["rules"] = [{"backendRefs": backends}]
        obj["spec"] = spec
        out.append(obj)
    return out


def parent_ref(gateway: ResolvedGateway) -> Obj:
    return {
        "group": GATEWAY_GROUP,
        "kind": "Gateway",
        "namespace": gateway.namespace,
        "name": gateway.name,
    }
