"""Rollout → one Kubernetes Service per version, for Gateway API routes.

An HTTPRoute splits traffic between Services, not DestinationRule subsets, so the weighted
`backendRefs` of `http_route` need a Service selecting each version's pods: the service's
selector with the version's labels, and the service's ports (Istio's own Gateway API
samples route bookinfo's reviews the same way, through `reviews-v1`, `reviews-v2`). They
are emitted only while a Gateway API gateway routes the Rollout's service.
"""

from __future__ import annotations

from compiler.lower.istio.common import LowerContext, Obj, new_object
from compiler.model.gateways import gateways_calling, split_binding, version_service_name
from compiler.model.records import PortRecord, ServiceRecord

APP_PROTOCOLS = {"http": "http", "http2": "http2", "grpc": "grpc", "tcp": "tcp"}


def version_services(ctx: LowerContext, record: ServiceRecord) -> list[Obj]:
    rollout = record.traffic.rollout
    view = record.view
    if rollout is None or not any(
        split_binding(gateway) == "http-route" for gateway in gateways_calling(view, ctx.model)
    ):
        return []
    out = []
    for version, _ in record.traffic.weights:
        obj = new_object(
            ctx,
            api_version="v1",
            kind="Service",
            name=version_service_name(view, version),
            namespace=view.key.namespace,
            source=rollout.ref,
        )
        obj["spec"] = {
            "selector": dict(sorted(view.version_labels(version).items())),
            "ports": [_port(port) for port in record.ports],
        }
        out.append(obj)
    return out


def _port(port: PortRecord) -> Obj:
    out: Obj = {"name": port.name, "port": port.port, "targetPort": port.target_port}
    out["protocol"] = "TCP"
    app_protocol = APP_PROTOCOLS.get(port.protocol)
    if app_protocol is not None:
        out["appProtocol"] = app_protocol
    return out
