"""Rollout + Resilience → exactly one VirtualService per host.

Routes, in the order Envoy evaluates them: the A/B `match` rules first (each to its
version), then the default route carrying the weighted split at the rollout's current
step, the mirror, the timeout and the retries. A Resilience scoped to one port gets its
own block of the same routes, restricted to that port and placed before the general one.
Ports declared `tcp` get a `tcp` route with the weighted split only.
Istio merges several VirtualServices for one host unpredictably, hence one per host.

A Rollout of a service a classic ingress gateway may call also gets one VirtualService per
such gateway, bound to the gateway's `Gateway` resource (`gateways: [ns/name]`) for the
hosts it serves: a VirtualService bound to a gateway matches requests by the gateway's
hosts, not the service's, and the mesh's routes (bound to `mesh` only) never see gateway
traffic. It carries the traffic (A/B matches, split, mirror), not the Resilience settings,
which stay with mesh callers.
"""

from __future__ import annotations

from compiler.kinds.resilience.model import Retries
from compiler.kinds.rollout.cookies import cookie_regex
from compiler.kinds.rollout.model import MatchRule, StringMatch
from compiler.lower.istio.common import (
    NETWORKING,
    LowerContext,
    Obj,
    host,
    istio_duration,
    new_object,
)
from compiler.model.gateways import (
    gateway_http_ports,
    gateway_route_name,
    gateways_calling,
    split_binding,
)
from compiler.model.mesh import ServiceView
from compiler.model.records import RouteSettings, ServiceRecord, TrafficRecord


def virtual_service(ctx: LowerContext, record: ServiceRecord) -> Obj | None:
    view = record.view
    traffic = record.traffic
    rollout = traffic.rollout
    tcp_ports = sorted(int(p.port) for p in view.spec.ports if p.protocol == "tcp")
    has_http = any(p.protocol != "tcp" for p in view.spec.ports)
    general = record.general
    wants_http = has_http and (
        rollout is not None or general != RouteSettings(None, None) or record.port_routes
    )
    if not wants_http and (rollout is None or not tcp_ports):
        return None
    source = rollout.ref if rollout is not None else _resilience_ref(view)
    obj = new_object(
        ctx,
        api_version=NETWORKING,
        kind="VirtualService",
        name=view.key.name,
        namespace=view.key.namespace,
        source=source,
    )
    body: Obj = {"hosts": [host(ctx, view.key)]}
    if wants_http:
        routes: list[Obj] = []
        for port, settings in record.port_routes:
            routes.extend(route_block(ctx, record, settings, port=port))
        routes.extend(route_block(ctx, record, general, port=None))
        body["http"] = routes
    if tcp_ports and rollout is not None:
        body["tcp"] = [tcp_route(ctx, record, tcp_ports, only_ports=has_http)]
    obj["spec"] = body
    return obj


def gateway_virtual_services(ctx: LowerContext, record: ServiceRecord) -> list[Obj]:
    """The Rollout's routes for each classic gateway that may call the service and names
    its `Gateway` resource and hosts (lint reports the gateways that do not)."""
    if record.traffic.rollout is None:
        return []
    view = record.view
    out = []
    for gateway in gateways_calling(view, ctx.model):
        ports = gateway_http_ports(view, gateway, ctx.model)
        if split_binding(gateway) != "virtual-service" or not ports:
            continue
        obj = new_object(
            ctx,
            api_version=NETWORKING,
            kind="VirtualService",
            name=gateway_route_name(view, gateway),
            namespace=view.key.namespace,
            source=record.traffic.rollout.ref,
        )
        routes = route_block(ctx, record, RouteSettings(None, None), port=None)
        obj["spec"] = {
            "hosts": list(gateway.hosts),
            "gateways": [gateway.gateway],
            "http": [_to_port(route, ports[0]) for route in routes],
        }
        out.append(obj)
    return out


def _to_port(route: Obj, port: int) -> Obj:
    """A gateway's route names the service port (a mesh route keeps the port called)."""
    for target in route["route"]:
        target["destination"]["port"] = {"number": port}
    if "mirror" in route:
        route["mirror"]["port"] = {"number": port}
    return route


def tcp_route(
    ctx: LowerContext, record: ServiceRecord, ports: list[int], *, only_ports: bool
) -> Obj:
    """TCP ports get the weighted split only: header matches, mirroring, timeouts and
    retries are HTTP features (lint reports them on a TCP-only service)."""
    route: Obj = {"route": weighted_destinations(host(ctx, record.key), record.traffic)}
    if only_ports:
        route["match"] = [{"port": port} for port in ports]
    return route


def _resilience_ref(view: ServiceView) -> str:
    return sorted(r.ref for r in view.resilience)[0]


def route_block(
    ctx: LowerContext, record: ServiceRecord, settings: RouteSettings, *, port: int | None
) -> list[Obj]:
    prefix = f"port-{port}-" if port is not None else ""
    port_match: Obj = {"port": port} if port is not None else {}
    fqdn = host(ctx, record.key)
    traffic = record.traffic
    routes: list[Obj] = []
    for index, rule in enumerate(traffic.matches):
        route: Obj = {
            "name": f"{prefix}match-{index}",
            "match": [{**match_conditions(rule), **port_match}],
            "route": [{"destination": {"host": fqdn, "subset": rule.version}}],
        }
        routes.append(_with_settings(route, settings))
    default: Obj = {"name": f"{prefix}default"}
    if port_match:
        default["match"] = [port_match]
    default["route"] = weighted_destinations(fqdn, traffic)
    if traffic.mirror is not None:
        default["mirror"] = {"host": fqdn, "subset": traffic.mirror.version}
        default["mirrorPercentage"] = {"value": float(traffic.mirror.percentage)}
    routes.append(_with_settings(default, settings))
    return routes


def _with_settings(route: Obj, settings: RouteSettings) -> Obj:
    if settings.timeout is not None:
        route["timeout"] = istio_duration(settings.timeout)
    if settings.retries is not None:
        route["retries"] = retry_policy(settings.retries)
    return route


def retry_policy(retries: Retries) -> Obj:
    out: Obj = {"attempts": retries.attempts}
    if retries.per_try_timeout is not None:
        out["perTryTimeout"] = istio_duration(retries.per_try_timeout)
    if retries.retry_on:
        out["retryOn"] = ",".join(retries.retry_on)
    return out


def weighted_destinations(fqdn: str, traffic: TrafficRecord) -> list[Obj]:
    if traffic.rollout is None:
        return [{"destination": {"host": fqdn}}]
    return [
        {"destination": {"host": fqdn, "subset": version}, "weight": weight}
        for version, weight in traffic.weights
    ]


def match_conditions(rule: MatchRule) -> Obj:
    # Istio wants header keys lowercase; HTTP header names are case-insensitive anyway
    headers: Obj = {
        name.lower(): string_match(match) for name, match in sorted(rule.headers.items())
    }
    if rule.cookies:
        headers["cookie"] = {"regex": cookie_regex(rule.cookies)}
    return {"headers": headers}


def string_match(match: StringMatch) -> Obj:
    if match.exact is not None:
        return {"exact": match.exact}
    if match.prefix is not None:
        return {"prefix": match.prefix}
    return {"regex": match.regex}
