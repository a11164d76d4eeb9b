"""Rollout + Resilience → exactly one VirtualService per host.

Routes, in the order Envoy evaluates them: the A/B `match` rules first (each to its
version), then the default route carrying the weighted split at the rollout's current
step, the mirror, the timeout and the retries. A Resilience scoped to one port gets its
own block of the same routes, restricted to that port and placed before the general one.
Ports declared `tcp` get a `tcp` route with the weighted split only.
Istio merges several VirtualServices for one host unpredictably, hence one per host.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.kinds.resilience.model import ResilienceSpec, Retries
from compiler.kinds.rollout.cookies import cookie_regex
from compiler.kinds.rollout.model import MatchRule, RolloutSpec, StringMatch
from compiler.lower.istio.common import (
    NETWORKING,
    LowerContext,
    Obj,
    host,
    istio_duration,
    new_object,
)
from compiler.model.mesh import ServiceView
from compiler.model.traffic import (
    current_rollout,
    live_weights,
    port_resilience,
    service_resilience,
)


@dataclass(frozen=True, slots=True)
class RouteSettings:
    """What a block of routes carries besides its destinations."""

    timeout: str | None
    retries: Retries | None


def _settings(spec: ResilienceSpec | None, fallback: RouteSettings | None = None) -> RouteSettings:
    timeout = spec.timeout if spec is not None else None
    retries = spec.retries if spec is not None else None
    if fallback is not None:
        timeout = timeout if timeout is not None else fallback.timeout
        retries = retries if retries is not None else fallback.retries
    return RouteSettings(timeout, retries)


def virtual_service(ctx: LowerContext, view: ServiceView) -> Obj | None:
    rollout = current_rollout(view)
    tcp_ports = sorted(int(p.port) for p in view.spec.ports if p.protocol == "tcp")
    has_http = any(p.protocol != "tcp" for p in view.spec.ports)
    general = _settings(service_resilience(view))
    per_port = {
        port: _settings(spec, general)
        for port, spec in port_resilience(view).items()
        if port not in tcp_ports and (spec.timeout is not None or spec.retries is not None)
    }
    wants_http = has_http and (
        rollout is not None or general != RouteSettings(None, None) or per_port
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
    spec = rollout.model.spec if rollout is not None else None
    key = f"{rollout.model.metadata.namespace}/{rollout.model.metadata.name}" if rollout else ""
    body: Obj = {"hosts": [host(ctx, view.key)]}
    if wants_http:
        routes: list[Obj] = []
        for port, settings in per_port.items():
            routes.extend(route_block(ctx, view, spec, settings, port=port, state_key=key))
        routes.extend(route_block(ctx, view, spec, general, port=None, state_key=key))
        body["http"] = routes
    if tcp_ports and spec is not None:
        body["tcp"] = [tcp_route(ctx, view, spec, tcp_ports, state_key=key, only_ports=has_http)]
    obj["spec"] = body
    return obj


def tcp_route(
    ctx: LowerContext,
    view: ServiceView,
    rollout: RolloutSpec,
    ports: list[int],
    *,
    state_key: str,
    only_ports: bool,
) -> Obj:
    """TCP ports get the weighted split only: header matches, mirroring, timeouts and
    retries are HTTP features (lint reports them on a TCP-only service)."""
    route: Obj = {"route": weighted_destinations(ctx, host(ctx, view.key), rollout, state_key)}
    if only_ports:
        route["match"] = [{"port": port} for port in ports]
    return route


def _resilience_ref(view: ServiceView) -> str:
    return sorted(r.ref for r in view.resilience)[0]


def route_block(
    ctx: LowerContext,
    view: ServiceView,
    rollout: RolloutSpec | None,
    settings: RouteSettings,
    *,
    port: int | None,
    state_key: str,
) -> list[Obj]:
    prefix = f"port-{port}-" if port is not None else ""
    port_match: Obj = {"port": port} if port is not None else {}
    fqdn = host(ctx, view.key)
    routes: list[Obj] = []
    for index, rule in enumerate(rollout.match if rollout is not None else []):
        route: Obj = {
            "name": f"{prefix}match-{index}",
            "match": [{**match_conditions(rule), **port_match}],
            "route": [{"destination": {"host": fqdn, "subset": rule.version}}],
        }
        routes.append(_with_settings(route, settings))
    default: Obj = {"name": f"{prefix}default"}
    if port_match:
        default["match"] = [port_match]
    default["route"] = weighted_destinations(ctx, fqdn, rollout, state_key)
    if rollout is not None and rollout.mirror is not None:
        default["mirror"] = {"host": fqdn, "subset": rollout.mirror.version}
        default["mirrorPercentage"] = {"value": float(rollout.mirror.percentage)}
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


def weighted_destinations(
    ctx: LowerContext, fqdn: str, rollout: RolloutSpec | None, state_key: str
) -> list[Obj]:
    if rollout is None:
        return [{"destination": {"host": fqdn}}]
    live = live_weights(rollout, ctx.rollout_state.get(state_key))
    return [
        {"destination": {"host": fqdn, "subset": version}, "weight": weight}
        for version, weight in live
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
