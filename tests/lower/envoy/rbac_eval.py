"""An evaluator of the RBAC configuration a snapshot carries, following Envoy's documented
RBAC semantics (a policy matches when any principal and any permission match; a DENY
filter denies what some policy matches, an ALLOW filter denies what none matches; the
route's `RBACPerRoute` replaces the listener's rules). Written from Envoy's reference,
independently of the emitter, for the fidelity tests of the Envoy backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict

from compiler.lower.envoy.snapshot import LISTENER, ROUTE, Snapshot

HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)
HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"


@dataclass(frozen=True)
class Request:
    principal: str
    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policy: str
    """The deny policy that matched, `none` when no allow policy did, "" when allowed."""
    shadow_allowed: bool


def _string(matcher: dict[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    if "exact" in matcher:
        return value == matcher["exact"]
    if "prefix" in matcher:
        return value.startswith(matcher["prefix"])
    if "suffix" in matcher:
        return value.endswith(matcher["suffix"])
    if "safeRegex" in matcher:
        return re.fullmatch(matcher["safeRegex"]["regex"], value) is not None
    raise NotImplementedError(matcher)


def _principal(principal: dict[str, Any], request: Request) -> bool:
    if principal.get("any"):
        return True
    if "authenticated" in principal:
        name = principal["authenticated"].get("principalName")
        return name is None or _string(name, request.principal)
    if "orIds" in principal:
        return any(_principal(p, request) for p in principal["orIds"]["ids"])
    if "andIds" in principal:
        return all(_principal(p, request) for p in principal["andIds"]["ids"])
    raise NotImplementedError(principal)


def _header(request: Request, name: str) -> str | None:
    if name == ":method":
        return request.method
    if name == ":path":
        return request.path
    return request.headers.get(name)


def _permission(permission: dict[str, Any], request: Request) -> bool:
    if permission.get("any"):
        return True
    if "header" in permission:
        header = permission["header"]
        return _string(header["stringMatch"], _header(request, header["name"]))
    if "urlPath" in permission:
        return _string(permission["urlPath"]["path"], request.path.split("?", 1)[0])
    if "andRules" in permission:
        return all(_permission(p, request) for p in permission["andRules"]["rules"])
    if "orRules" in permission:
        return any(_permission(p, request) for p in permission["orRules"]["rules"])
    raise NotImplementedError(permission)


def _matching(rules: dict[str, Any], request: Request) -> list[str]:
    return sorted(
        name
        for name, policy in rules.get("policies", {}).items()
        if any(_principal(p, request) for p in policy["principals"])
        and any(_permission(p, request) for p in policy["permissions"])
    )


def _verdict(rules: dict[str, Any] | None, request: Request) -> tuple[bool, str]:
    """(allowed, policy) of one filter's rules; no rules: the filter lets all through."""
    if rules is None:
        return True, ""
    matched = _matching(rules, request)
    if rules.get("action", "ALLOW") == "DENY":
        return (False, matched[0]) if matched else (True, "")
    if rules.get("action", "ALLOW") == "LOG":
        return True, ""
    return (True, "") if matched else (False, "none")


def http_filter_chain(snapshot: Snapshot, port: int) -> list[tuple[str, dict[str, Any]]]:
    """(filter name, listener-level RBAC config) of the inbound listener of `port`."""
    listener = MessageToDict(snapshot.resources[LISTENER][f"inbound|{port}"])
    chain = listener["filterChains"][0]["filters"]
    manager = next(f["typedConfig"] for f in chain if f["typedConfig"]["@type"] == HCM)
    return [
        (f["name"], f["typedConfig"])
        for f in manager["httpFilters"]
        if f["typedConfig"]["@type"] == HTTP_RBAC
    ]


class InboundRbac:
    """The effective RBAC of one inbound HTTP port (each filter's config, the route's
    override replacing the listener's), read once and asked many times."""

    def __init__(self, snapshot: Snapshot, port: int) -> None:
        route_config = MessageToDict(snapshot.resources[ROUTE][f"inbound|{port}"])
        route = route_config["virtualHosts"][0]["routes"][0]
        overrides = route.get("typedPerFilterConfig", {})
        self.filters = [
            overrides[name]["rbac"] if name in overrides else config
            for name, config in http_filter_chain(snapshot, port)
        ]

    def decide(self, request: Request) -> Decision:
        allowed, policy, shadow = True, "", True
        for effective in self.filters:
            live = _verdict(effective.get("rules"), request)
            if allowed and not live[0]:
                allowed, policy = live
            if "shadowRules" in effective:
                shadow = shadow and _verdict(effective["shadowRules"], request)[0]
            else:
                shadow = shadow and live[0]
        return Decision(allowed, policy, shadow)


def decide_http(snapshot: Snapshot, port: int, request: Request) -> Decision:
    """What the inbound listener of service port `port` decides for `request`."""
    return InboundRbac(snapshot, port).decide(request)


def decide_tcp(snapshot: Snapshot, port: int, principal: str) -> bool:
    listener = MessageToDict(snapshot.resources[LISTENER][f"inbound|{port}"])
    request = Request(principal)
    for item in listener["filterChains"][0]["filters"]:
        config = item["typedConfig"]
        if config["@type"] == NETWORK_RBAC and not _verdict(config.get("rules"), request)[0]:
            return False
    return True
