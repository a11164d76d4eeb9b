"""AccessPolicy → Envoy RBAC: who may call one inbound port of a workload, and how.

Each inbound HTTP listener carries three RBAC filters, in this order: LOG (rules marked
`log: true`), DENY, then ALLOW — a deny is decided before any allow. The listener-level
configs hold no rules (the ALLOW filter's empty policy set denies everything, so a route
without an override fails closed); the real rules ride on the route as
`typed_per_filter_config` overrides (`RBACPerRoute`). Routes come over RDS, and Envoy
applies a new route configuration to the next request, while a listener change leaves
open connections on the old filter chain until they drain: a policy edit must take
effect at once.

What the rules say, per service (the same answer as the effective model's):
- no AccessPolicy: the mesh default (deny: ALLOW with no policy; allow: any
  authenticated caller);
- only shadow-mode policies: the live decision allows every authenticated caller, and the
  policies' rules are the *shadow* rules (Envoy counts and logs what they would deny);
- otherwise the enforced policies' rules decide (no allow rule: nothing is allowed), and
  shadow policies, if any, are evaluated in shadow together with the enforced ones.

A rule reaches a port only if its `to.ports` (container ports, `ResolvedRule.live_ports`)
include the port's container port: the listener is per port, so ports are decided here
rather than by matching the destination port (which is the placement's, not the pod's).
Principals are the peer certificate's URI SAN. On a TCP port an allow rule that names
methods, paths or headers matches nothing and a deny rule drops those conditions (denying
more) — fail closed, as Istio does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac
from envoy.type.matcher.v3 import path_pb2, regex_pb2, string_pb2
from google.protobuf.any_pb2 import Any as AnyConfig

from compiler.kinds.access_policy.model import Rule
from compiler.lower.envoy.common import MeshSettings, pack
from compiler.model.records import PortRecord, ResolvedRule, ServiceRecord

RBAC_LOG = "meshc.rbac.log"
RBAC_DENY = "meshc.rbac.deny"
RBAC_ALLOW = "meshc.rbac.allow"
NETWORK_RBAC = "envoy.filters.network.rbac"

ALLOW_AUTHENTICATED = "meshc:allow-authenticated"
"""The policy that lets any authenticated caller in (shadow mode, or a default-allow mesh
for a service without AccessPolicy)."""

Policies = dict[str, rbac_pb2.Policy]


@dataclass(frozen=True, slots=True)
class PortAccess:
    """The RBAC rules of one inbound port, per filter (None: no shadow rules)."""

    log: Policies
    deny: Policies
    allow: Policies
    deny_shadow: Policies | None
    allow_shadow: Policies | None


def port_access(record: ServiceRecord, settings: MeshSettings, port: PortRecord) -> PortAccess:
    tcp = port.protocol == "tcp"

    def policies(rules: Iterable[ResolvedRule]) -> Policies:
        out: Policies = {}
        for rule in rules:
            policy = rule_policy(rule, settings, container_port=port.target_port, tcp=tcp)
            if policy is not None:
                out[policy_name(rule)] = policy
        return out

    rules = record.rules
    enforced = [r for r in rules if r.mode == "enforce"]
    shadowed = len(enforced) != len(rules)
    if not rules:
        allow = {} if settings.default_action == "deny" else _allow_authenticated()
        return PortAccess({}, {}, allow, None, None)
    logged = policies(r for r in rules if r.rule.log)
    shadow_deny = policies(r for r in rules if r.action == "deny") if shadowed else None
    shadow_allow = policies(r for r in rules if r.action == "allow") if shadowed else None
    if not enforced:
        return PortAccess(logged, {}, _allow_authenticated(), shadow_deny, shadow_allow)
    return PortAccess(
        logged,
        policies(r for r in enforced if r.action == "deny"),
        policies(r for r in enforced if r.action == "allow"),
        shadow_deny,
        shadow_allow,
    )


def policy_name(rule: ResolvedRule) -> str:
    """`<namespace>/<policy>/rule-<n>` (n from 1): Envoy reports the name of the policy
    that denied a request (`rbac_access_denied_matched_policy[...]`)."""
    meta = rule.policy.model.metadata
    return f"{meta.namespace}/{meta.name}/rule-{rule.index + 1}"


def _allow_authenticated() -> Policies:
    anyone = rbac_pb2.Principal(authenticated=rbac_pb2.Principal.Authenticated())
    return {
        ALLOW_AUTHENTICATED: rbac_pb2.Policy(
            permissions=[rbac_pb2.Permission(any=True)], principals=[anyone]
        )
    }


def rule_policy(
    rule: ResolvedRule, settings: MeshSettings, *, container_port: int, tcp: bool
) -> rbac_pb2.Policy | None:
    """One rule as an RBAC policy for one port; None when it cannot match there."""
    ports = rule.live_ports()
    if ports is not None and container_port not in ports:
        return None
    principals = _principals(*rule.live_sources(settings.trust_domain), settings)
    if not principals:
        return None
    permission = _permission(rule.rule, tcp=tcp)
    if permission is None:
        return None
    return rbac_pb2.Policy(permissions=[permission], principals=principals)


def _principals(
    ids: frozenset[str], namespaces: frozenset[str], settings: MeshSettings
) -> list[rbac_pb2.Principal]:
    def by_name(matcher: string_pb2.StringMatcher) -> rbac_pb2.Principal:
        return rbac_pb2.Principal(
            authenticated=rbac_pb2.Principal.Authenticated(principal_name=matcher)
        )

    out: list[rbac_pb2.Principal] = []
    if "*" in ids:
        out.append(rbac_pb2.Principal(authenticated=rbac_pb2.Principal.Authenticated()))
    out.extend(by_name(string_pb2.StringMatcher(exact=i)) for i in sorted(ids - {"*"}))
    out.extend(
        by_name(string_pb2.StringMatcher(prefix=f"spiffe://{settings.trust_domain}/ns/{ns}/sa/"))
        for ns in sorted(namespaces)
    )
    return out


def _permission(rule: Rule, *, tcp: bool) -> rbac_pb2.Permission | None:
    to = rule.to
    http_only = bool(to.methods or to.paths or rule.headers)
    if tcp and http_only:
        return None if rule.action == "allow" else rbac_pb2.Permission(any=True)
    conditions: list[rbac_pb2.Permission] = []
    if to.methods:
        conditions.append(
            _any_of(
                _header(":method", string_pb2.StringMatcher(exact=m))
                for m in sorted(set(to.methods))
            )
        )
    if to.paths:
        conditions.append(
            _any_of(
                rbac_pb2.Permission(url_path=path_pb2.PathMatcher(path=pattern_matcher(p)))
                for p in sorted(set(to.paths))
            )
        )
    for name, values in sorted(rule.headers.items()):
        conditions.append(_any_of(_header(name.lower(), pattern_matcher(v)) for v in values))
    if not conditions:
        return rbac_pb2.Permission(any=True)
    if len(conditions) == 1:
        return conditions[0]
    return rbac_pb2.Permission(and_rules=rbac_pb2.Permission.Set(rules=conditions))


def _any_of(permissions: Iterable[rbac_pb2.Permission]) -> rbac_pb2.Permission:
    found = list(permissions)
    if len(found) == 1:
        return found[0]
    return rbac_pb2.Permission(or_rules=rbac_pb2.Permission.Set(rules=found))


def _header(name: str, matcher: string_pb2.StringMatcher) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(
        header=route_components_pb2.HeaderMatcher(name=name, string_match=matcher)
    )


def pattern_matcher(pattern: str) -> string_pb2.StringMatcher:
    """An AccessPolicy path or header pattern: exact, `prefix*`, `*suffix`, or `*` (any
    non-empty value) — `compiler.kinds.access_policy.model.pattern_matches`."""
    if pattern == "*":
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=".+"))
    if pattern.endswith("*"):
        return string_pb2.StringMatcher(prefix=pattern[:-1])
    if pattern.startswith("*"):
        return string_pb2.StringMatcher(suffix=pattern[1:])
    return string_pb2.StringMatcher(exact=pattern)


def _rules(action: int, policies: Policies | None) -> rbac_pb2.RBAC | None:
    if policies is None:
        return None
    return rbac_pb2.RBAC(action=action, policies=policies)


_FILTERS = (
    (RBAC_LOG, rbac_pb2.RBAC.LOG),
    (RBAC_DENY, rbac_pb2.RBAC.DENY),
    (RBAC_ALLOW, rbac_pb2.RBAC.ALLOW),
)


def _stat_prefix(name: str) -> str:
    """`meshc_rbac_deny` etc.: Envoy counts `http.<listener>.rbac.<prefix>.allowed`,
    `.denied`, `.shadow_allowed` and `.shadow_denied` per filter."""
    return name.replace(".", "_")


def http_filters() -> list[hcm.HttpFilter]:
    """The listener's RBAC filters (LOG, DENY, ALLOW), holding no rules of their own: the
    route's overrides do (an ALLOW without override allows nothing)."""
    return [
        hcm.HttpFilter(
            name=name,
            typed_config=pack(
                http_rbac.RBAC(
                    rules=rbac_pb2.RBAC(action=action),
                    rules_stat_prefix=_stat_prefix(name),
                    shadow_rules_stat_prefix=_stat_prefix(name),
                )
            ),
        )
        for name, action in _FILTERS
    ]


def per_route(access: PortAccess) -> dict[str, AnyConfig]:
    """The route's `typed_per_filter_config`: each filter's rules and shadow rules."""
    rules = {
        RBAC_LOG: (access.log, None),
        RBAC_DENY: (access.deny, access.deny_shadow),
        RBAC_ALLOW: (access.allow, access.allow_shadow),
    }
    out: dict[str, AnyConfig] = {}
    for name, action in _FILTERS:
        live, shadow = rules[name]
        config = http_rbac.RBAC(
            rules=_rules(action, live),
            shadow_rules=_rules(action, shadow),
            rules_stat_prefix=_stat_prefix(name),
            shadow_rules_stat_prefix=_stat_prefix(name),
        )
        out[name] = pack(http_rbac.RBACPerRoute(rbac=config))
    return out


def network_filters(access: PortAccess, stat_prefix: str) -> list[listener_components_pb2.Filter]:
    """A TCP port's RBAC: the network filter has no routes, so the rules sit on the
    listener (DENY then ALLOW; LOG has no effect without HTTP)."""
    out = []
    for name, action, live, shadow in (
        ("deny", rbac_pb2.RBAC.DENY, access.deny, access.deny_shadow),
        ("allow", rbac_pb2.RBAC.ALLOW, access.allow, access.allow_shadow),
    ):
        config = network_rbac.RBAC(
            rules=_rules(action, live),
            shadow_rules=_rules(action, shadow),
            stat_prefix=f"{stat_prefix}_{name}.",
            shadow_rules_stat_prefix=f"meshc_rbac_{name}",
        )
        out.append(listener_components_pb2.Filter(name=NETWORK_RBAC, typed_config=pack(config)))
    return out
