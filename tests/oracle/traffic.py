"""Where Istio sends an HTTP request: VirtualService routes (for sidecars or a classic gateway)
and Gateway API HTTPRoutes attached to a Gateway, independent of meshc.

Written from Istio's VirtualService and DestinationRule reference pages (``hosts`` with short
names taken in the VirtualService's namespace, ``gateways`` defaulting to ``mesh``, routes
evaluated in order, the first match wins, subsets from the DestinationRule of the host) and
the Gateway API specification (``parentRefs`` defaults, listener ``allowedRoutes``, hostname
intersection, path-match precedence, ``backendRefs`` weights defaulting to 1). Objects are
plain dicts; what the oracle does not model raises ``NotImplementedError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HttpRequest",
    "gateway_api_backends",
    "subset_labels",
    "virtual_service_destinations",
]

_GATEWAY_GROUP = "gateway.networking.k8s.io"
_MATCH_FIELDS = frozenset({"uri", "headers", "method", "name", "port", "gateways"})


@dataclass(frozen=True)
class HttpRequest:
    """One request as the routing proxy sees it; ``host`` is the authority without port
    (fully qualified for services), ``headers`` have lowercase names."""

    host: str
    path: str = "/"
    method: str = "GET"
    port: int = 80
    headers: Mapping[str, str] = field(default_factory=dict)


def virtual_service_destinations(
    objects: Iterable[Mapping[str, Any]],
    request: HttpRequest,
    *,
    gateway: str = "mesh",
    cluster_domain: str = "cluster.local",
) -> dict[tuple[str, str | None], int]:
    """``(destination host, subset) → weight`` for ``request`` routed by a sidecar
    (``gateway="mesh"``) or by the classic gateway ``namespace/name``. Without an applicable
    VirtualService the request goes to its own host, unsplit."""
    services = [
        vs
        for vs in objects
        if vs.get("kind") == "VirtualService"
        and _binds(vs, gateway)
        and any(_host_matches(h, _namespace(vs), cluster_domain, request.host) for h in _hosts(vs))
    ]
    if len(services) > 1 and gateway == "mesh":
        names = sorted(_name(vs) for vs in services)
        raise ValueError(f"several VirtualServices for {request.host} apply to sidecars: {names}")
    for vs in services:
        for route in (vs.get("spec") or {}).get("http") or []:
            if _http_route_matches(route, request, gateway, _namespace(vs)):
                return _weights(route, _namespace(vs), cluster_domain)
    return {(request.host, None): 100}


def subset_labels(
    objects: Iterable[Mapping[str, Any]],
    host: str,
    subset: str,
    *,
    cluster_domain: str = "cluster.local",
) -> Mapping[str, str]:
    """The labels a DestinationRule's subset adds to the host's own selector."""
    for rule in objects:
        if rule.get("kind") != "DestinationRule":
            continue
        spec: Mapping[str, Any] = rule.get("spec") or {}
        if _fqdn(str(spec.get("host")), _namespace(rule), cluster_domain) != host:
            continue
        for entry in spec.get("subsets") or []:
            if entry.get("name") == subset:
                labels: Mapping[str, str] = entry.get("labels") or {}
                return labels
    raise ValueError(f"no DestinationRule defines subset {subset!r} of {host}")


def gateway_api_backends(
    objects: Iterable[Mapping[str, Any]],
    gateway_namespace: str,
    gateway_name: str,
    request: HttpRequest,
) -> dict[tuple[str, str, int | None], int]:
    """``(namespace, Service, port) → weight`` for ``request`` arriving at a listener of the
    Gateway: the most precise matching rule among the HTTPRoutes attached to that listener
    (exact path, then the longest prefix, then a method match; ties to the route that sorts
    first by namespace/name, standing in for the oldest). No listener on the port, no route
    or a rule without backends: an empty mapping (the request is refused)."""
    rendered = list(objects)
    gateway = _find_gateway(rendered, gateway_namespace, gateway_name)
    listeners = [
        listener
        for listener in (gateway.get("spec") or {}).get("listeners") or []
        if int(listener.get("port", 0)) == request.port
        and _hostname_matches(listener.get("hostname"), request.host)
    ]
    candidates: list[tuple[tuple[int, int, int], str, Mapping[str, Any], str]] = []
    for route in rendered:
        if route.get("kind") != "HTTPRoute" or not _route_attaches(route, gateway, listeners):
            continue
        hostnames: Sequence[str] = (route.get("spec") or {}).get("hostnames") or []
        if hostnames and not any(_hostname_matches(h, request.host) for h in hostnames):
            continue
        for rule in (route.get("spec") or {}).get("rules") or []:
            rank = _rule_rank(rule, request)
            if rank is not None:
                order = f"{_namespace(route)}/{_name(route)}"
                candidates.append((rank, order, rule, _namespace(route)))
    if not candidates:
        return {}
    candidates.sort(key=lambda c: (tuple(-r for r in c[0]), c[1]))
    _, _, rule, namespace = candidates[0]
    return _backend_weights(rule, namespace)


def _binds(vs: Mapping[str, Any], gateway: str) -> bool:
    """``gateways`` absent means ``mesh``; a name without namespace is in the VS's own."""
    given: Sequence[str] = (vs.get("spec") or {}).get("gateways") or ["mesh"]
    return gateway in {_gateway_ref(g, _namespace(vs)) for g in given}


def _gateway_ref(ref: str, namespace: str) -> str:
    return ref if ref == "mesh" or "/" in ref else f"{namespace}/{ref}"


def _http_route_matches(
    route: Mapping[str, Any], request: HttpRequest, gateway: str, namespace: str
) -> bool:
    """No ``match`` matches every request; otherwise any one match block, whose conditions
    are ANDed."""
    matches: Sequence[Mapping[str, Any]] = route.get("match") or []
    return not matches or any(_match_block(m, request, gateway, namespace) for m in matches)


def _match_block(
    block: Mapping[str, Any], request: HttpRequest, gateway: str, namespace: str
) -> bool:
    unknown = set(block) - _MATCH_FIELDS
    if unknown:
        raise NotImplementedError(f"VirtualService match fields {sorted(unknown)}")
    headers: Mapping[str, Mapping[str, str]] = block.get("headers") or {}
    conditions = [
        "uri" not in block or _string_match(block["uri"], request.path),
        "method" not in block or _string_match(block["method"], request.method),
        "port" not in block or int(block["port"]) == request.port,
        "gateways" not in block
        or gateway in {_gateway_ref(g, namespace) for g in block["gateways"]},
        all(
            name.lower() in request.headers
            and _string_match(condition, request.headers[name.lower()])
            for name, condition in headers.items()
        ),
    ]
    return all(conditions)


def _string_match(condition: Mapping[str, str], value: str) -> bool:
    if "exact" in condition:
        return value == condition["exact"]
    if "prefix" in condition:
        return value.startswith(condition["prefix"])
    raise NotImplementedError(f"string match {sorted(condition)}")


def _weights(
    route: Mapping[str, Any], namespace: str, cluster_domain: str
) -> dict[tuple[str, str | None], int]:
    """A single destination without weight takes all traffic; several need weights."""
    destinations: Sequence[Mapping[str, Any]] = route.get("route") or []
    if not destinations:
        raise NotImplementedError("http route without route destinations (redirect/direct)")
    weights: dict[tuple[str, str | None], int] = {}
    for entry in destinations:
        destination: Mapping[str, Any] = entry["destination"]
        key = (
            _fqdn(str(destination["host"]), namespace, cluster_domain),
            destination.get("subset"),
        )
        if "weight" not in entry and len(destinations) > 1:
            raise ValueError("several destinations need weights")
        weights[key] = weights.get(key, 0) + int(entry.get("weight", 100))
    return {key: weight for key, weight in weights.items() if weight}


def _find_gateway(
    objects: Sequence[Mapping[str, Any]], namespace: str, name: str
) -> Mapping[str, Any]:
    for obj in objects:
        if (
            obj.get("kind") == "Gateway"
            and str(obj.get("apiVersion", "")).startswith(_GATEWAY_GROUP + "/")
            and _namespace(obj) == namespace
            and _name(obj) == name
        ):
            return obj
    raise ValueError(f"no Gateway API Gateway {namespace}/{name} among the objects")


def _route_attaches(
    route: Mapping[str, Any], gateway: Mapping[str, Any], listeners: Sequence[Mapping[str, Any]]
) -> bool:
    """A parentRef names the Gateway (group and kind default to the Gateway API's, namespace
    to the route's) and some listener on the port admits routes from the route's namespace
    (``allowedRoutes.namespaces.from``: Same by default, or All)."""
    namespace = _namespace(route)
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        if "sectionName" in ref or "port" in ref:
            raise NotImplementedError("parentRefs sectionName/port")
        if (
            ref.get("group", _GATEWAY_GROUP) == _GATEWAY_GROUP
            and ref.get("kind", "Gateway") == "Gateway"
            and ref.get("namespace", namespace) == _namespace(gateway)
            and ref.get("name") == _name(gateway)
            and any(_admits(listener, namespace, _namespace(gateway)) for listener in listeners)
        ):
            return True
    return False


def _admits(listener: Mapping[str, Any], route_namespace: str, gateway_namespace: str) -> bool:
    allowed: Mapping[str, Any] = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    origin = allowed.get("from", "Same")
    if origin == "All":
        return True
    if origin == "Same":
        return route_namespace == gateway_namespace
    raise NotImplementedError(f"allowedRoutes from {origin!r}")


def _hostname_matches(pattern: str | None, host: str) -> bool:
    """No hostname matches any host; ``*.example.com`` any host below example.com."""
    if not pattern:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _rule_rank(rule: Mapping[str, Any], request: HttpRequest) -> tuple[int, int, int] | None:
    """The best (exact, prefix length, method) of the rule's matches that match, or None. No
    matches is a ``PathPrefix /`` match."""
    matches: Sequence[Mapping[str, Any]] = rule.get("matches") or [{}]
    ranks = [rank for match in matches if (rank := _match_rank(match, request)) is not None]
    return max(ranks) if ranks else None


def _match_rank(match: Mapping[str, Any], request: HttpRequest) -> tuple[int, int, int] | None:
    if set(match) - {"path", "method"}:
        raise NotImplementedError(
            f"HTTPRoute match fields {sorted(set(match) - {'path', 'method'})}"
        )
    path: Mapping[str, str] = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind = path.get("type", "PathPrefix")
    value = path.get("value", "/")
    if kind == "Exact":
        hit, exact = request.path == value, 1
    elif kind == "PathPrefix":
        trimmed = value.rstrip("/")
        hit = request.path == trimmed or request.path.startswith(trimmed + "/") or value == "/"
        exact = 0
    else:
        raise NotImplementedError(f"path match type {kind!r}")
    method = match.get("method")
    if not hit or (method is not None and method != request.method):
        return None
    return (exact, len(value), 1 if method else 0)


def _backend_weights(
    rule: Mapping[str, Any], namespace: str
) -> dict[tuple[str, str, int | None], int]:
    weights: dict[tuple[str, str, int | None], int] = {}
    for ref in rule.get("backendRefs") or []:
        if ref.get("group", "") != "" or ref.get("kind", "Service") != "Service":
            raise NotImplementedError(f"backendRef of kind {ref.get('group')}/{ref.get('kind')}")
        if ref.get("namespace", namespace) != namespace:
            raise NotImplementedError("cross-namespace backendRefs (ReferenceGrant)")
        port = ref.get("port")
        key = (namespace, str(ref["name"]), int(port) if port is not None else None)
        weights[key] = weights.get(key, 0) + int(ref.get("weight", 1))
    return {key: weight for key, weight in weights.items() if weight}


def _hosts(vs: Mapping[str, Any]) -> Sequence[str]:
    hosts: Sequence[str] = (vs.get("spec") or {}).get("hosts") or []
    return hosts


def _host_matches(pattern: str, namespace: str, cluster_domain: str, host: str) -> bool:
    """A VirtualService host: ``*`` any host, ``*.suffix`` hosts under the suffix, a short
    name a service of the VirtualService's namespace, else the exact name."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return _fqdn(pattern, namespace, cluster_domain) == host


def _fqdn(host: str, namespace: str, cluster_domain: str) -> str:
    """Istio reads a short name (no dot) as a service of the referring object's namespace."""
    return host if "." in host else f"{host}.{namespace}.svc.{cluster_domain}"


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _namespace(obj: Mapping[str, Any]) -> str:
    namespace = (obj.get("metadata") or {}).get("namespace")
    if not namespace:
        raise ValueError(f"{obj.get('kind')} {_name(obj)!r} has no namespace")
    return str(namespace)
