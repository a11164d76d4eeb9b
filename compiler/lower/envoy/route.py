"""RDS: the inbound route of each port (to the local application, carrying the port's
access rules) and the outbound routes (one virtual host per declared destination port).

Outbound, a virtual host answers only the names of a destination the workload declares in
`calls:` — `name` (same namespace only, as a short name resolves there), `name.ns`,
`name.ns.svc`, `name.ns.svc.<cluster domain>`, each with `:<port>`, and without a port
for the destination's first HTTP port. Anything else has no route: Envoy answers 404
(`NR`), which tells an undeclared call from a refused one (403 from the server's RBAC).
Routes, in the order Envoy evaluates them: the A/B matches (each to its version), then
the default route with the weighted split at the rollout's current step, the mirror, the
retry policy (Istio's default when none is declared) and the timeout (none: disabled, as
in Istio; Envoy's own default would cut calls at 15 s).
"""

from __future__ import annotations

from collections.abc import Callable

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import wrappers_pb2
from google.protobuf.any_pb2 import Any as AnyConfig

from compiler.kinds.resilience.model import (
    ISTIO_DEFAULT_ATTEMPTS,
    ISTIO_DEFAULT_RETRY_ON,
    HashLoadBalancer,
)
from compiler.kinds.rollout.cookies import cookie_regex
from compiler.kinds.rollout.model import MatchRule, Mirror, StringMatch
from compiler.lower.envoy.common import duration, millis, pack
from compiler.model.records import PortRecord, RetryPolicy

ClusterOf = Callable[[str], str]
"""Version ("" for every instance) → the cluster name of that destination version."""

PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"


def inbound_route_config(
    name: str, cluster: str, rbac: dict[str, AnyConfig]
) -> route_pb2.RouteConfiguration:
    """Every request on the port goes to the local application; the route carries the
    port's RBAC overrides (`rbac.per_route`), so an RDS push changes who may call."""
    route = rc.Route(
        name="default",
        match=rc.RouteMatch(prefix="/"),
        route=rc.RouteAction(cluster=cluster, timeout=millis(0)),
        typed_per_filter_config=rbac,
    )
    host = rc.VirtualHost(name=name, domains=["*"], routes=[route])
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=[host])


def outbound_route_config(name: str, hosts: list[rc.VirtualHost]) -> route_pb2.RouteConfiguration:
    return route_pb2.RouteConfiguration(
        name=name, virtual_hosts=sorted(hosts, key=lambda h: h.name)
    )


def domains(names: list[str], port: int, *, portless: bool) -> list[str]:
    """Each name with `:port`, and bare when the port is the destination's first."""
    out = [f"{name}:{port}" for name in names]
    if portless:
        out.extend(names)
    return out


def service_virtual_host(
    name: str,
    host_domains: list[str],
    port: PortRecord,
    *,
    weights: tuple[tuple[str, int], ...],
    matches: tuple[MatchRule, ...],
    mirror: Mirror | None,
    cluster_of: ClusterOf,
) -> rc.VirtualHost:
    """A mesh destination port: A/B matches first, then the split (no Rollout: the
    cluster of every instance), each route with the port's retries and timeout."""
    routes = []
    for index, rule in enumerate(matches):
        match = rc.RouteMatch(prefix="/", headers=_match_headers(rule))
        action = _action(port, rc.RouteAction(cluster=cluster_of(rule.version)))
        routes.append(rc.Route(name=f"match-{index}", match=match, route=action))
    default = rc.RouteAction()
    if weights:
        default.weighted_clusters.CopyFrom(weighted(weights, cluster_of))
    else:
        default.cluster = cluster_of("")
    if mirror is not None:
        default.request_mirror_policies.append(mirror_policy(mirror, cluster_of))
    routes.append(
        rc.Route(name="default", match=rc.RouteMatch(prefix="/"), route=_action(port, default))
    )
    return rc.VirtualHost(name=name, domains=host_domains, routes=routes)


def external_virtual_host(name: str, host_domains: list[str], cluster: str) -> rc.VirtualHost:
    """An External's host: everything to its one cluster, with Istio's default retries."""
    action = rc.RouteAction(cluster=cluster, timeout=millis(0), retry_policy=_default_retries())
    route = rc.Route(name="default", match=rc.RouteMatch(prefix="/"), route=action)
    return rc.VirtualHost(name=name, domains=host_domains, routes=[route])


def weighted(weights: tuple[tuple[str, int], ...], cluster_of: ClusterOf) -> rc.WeightedCluster:
    return rc.WeightedCluster(
        clusters=[
            rc.WeightedCluster.ClusterWeight(
                name=cluster_of(version), weight=wrappers_pb2.UInt32Value(value=weight)
            )
            for version, weight in weights
        ]
    )


def mirror_policy(mirror: Mirror, cluster_of: ClusterOf) -> rc.RouteAction.RequestMirrorPolicy:
    fraction = percent_pb2.FractionalPercent(
        numerator=round(mirror.percentage * 10_000),
        denominator=percent_pb2.FractionalPercent.MILLION,
    )
    return rc.RouteAction.RequestMirrorPolicy(
        cluster=cluster_of(mirror.version),
        runtime_fraction=base_pb2.RuntimeFractionalPercent(default_value=fraction),
    )


def _action(port: PortRecord, action: rc.RouteAction) -> rc.RouteAction:
    action.timeout.CopyFrom(duration(port.timeout) if port.timeout is not None else millis(0))
    retries = retry_policy(port.retries) if port.retries is not None else None
    if retries is not None:
        action.retry_policy.CopyFrom(retries)
    if isinstance(port.load_balancer, HashLoadBalancer):
        action.hash_policy.append(hash_policy(port.load_balancer))
    return action


def retry_policy(policy: RetryPolicy) -> rc.RetryPolicy | None:
    """`attempts` retries after the first try (none: no policy), retried on a different
    host, on the declared conditions; numeric conditions are retriable status codes."""
    if policy.attempts == 0:
        return None
    codes = sorted({int(token) for token in policy.retry_on if token.isdigit()})
    conditions = [token for token in policy.retry_on if not token.isdigit()]
    if codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    if "retriable-status-codes" in conditions and not codes:
        codes = [503]
    out = rc.RetryPolicy(
        retry_on=",".join(conditions),
        num_retries=wrappers_pb2.UInt32Value(value=policy.attempts),
        retriable_status_codes=codes,
        retry_host_predicate=[
            rc.RetryPolicy.RetryHostPredicate(
                name=PREVIOUS_HOSTS, typed_config=pack(previous_hosts_pb2.PreviousHostsPredicate())
            )
        ],
        host_selection_retry_max_attempts=5,
    )
    if policy.per_try_timeout is not None:
        out.per_try_timeout.CopyFrom(duration(policy.per_try_timeout))
    return out


def _default_retries() -> rc.RetryPolicy:
    policy = retry_policy(RetryPolicy(ISTIO_DEFAULT_ATTEMPTS, None, ISTIO_DEFAULT_RETRY_ON, False))
    assert policy is not None
    return policy


def hash_policy(lb: HashLoadBalancer) -> rc.RouteAction.HashPolicy:
    key = lb.consistent_hash
    if key.header is not None:
        return rc.RouteAction.HashPolicy(
            header=rc.RouteAction.HashPolicy.Header(header_name=key.header.lower())
        )
    if key.cookie is not None:
        cookie = rc.RouteAction.HashPolicy.Cookie(name=key.cookie.name)
        if key.cookie.ttl is not None:
            cookie.ttl.CopyFrom(duration(key.cookie.ttl))
        if key.cookie.path is not None:
            cookie.path = key.cookie.path
        return rc.RouteAction.HashPolicy(cookie=cookie)
    return rc.RouteAction.HashPolicy(
        connection_properties=rc.RouteAction.HashPolicy.ConnectionProperties(source_ip=True)
    )


def _match_headers(rule: MatchRule) -> list[rc.HeaderMatcher]:
    out = [
        rc.HeaderMatcher(name=name.lower(), string_match=string_match(match))
        for name, match in sorted(rule.headers.items())
    ]
    if rule.cookies:
        regex = regex_pb2.RegexMatcher(regex=cookie_regex(rule.cookies))
        out.append(
            rc.HeaderMatcher(name="cookie", string_match=string_pb2.StringMatcher(safe_regex=regex))
        )
    return out


def string_match(match: StringMatch) -> string_pb2.StringMatcher:
    if match.exact is not None:
        return string_pb2.StringMatcher(exact=match.exact)
    if match.prefix is not None:
        return string_pb2.StringMatcher(prefix=match.prefix)
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=match.regex or ""))
