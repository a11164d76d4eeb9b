"""An evaluator of Istio's documented AuthorizationPolicy semantics, independent of meshc.

Property tests render policies with meshc and ask this module whether Istio would allow a
request; it therefore imports nothing from ``compiler/`` and reads the rendered objects as plain
dicts, so a misunderstanding in the compiler cannot leak into the oracle that judges it.

The rules follow Istio's reference page (istio.io/latest/docs/reference/config/security/
authorization-policy/, the comments of ``security/v1beta1/authorization_policy.proto`` in
istio/api) and the "Authorization" section of the security concepts page
(istio.io/latest/docs/concepts/security/). What the oracle cannot judge faithfully (``ipBlocks``,
hosts, path templates, conditions other than request headers, ``targetRef``) raises
``NotImplementedError`` rather than guessing; malformed input raises ``ValueError``.

The one entry point of the oracle: Kubernetes NetworkPolicy evaluation (``connection_allowed``)
lives in ``network_policy.py`` and Istio's registry, ServiceEntry visibility and Sidecar egress
(``proxy_outcome``) in ``sidecar.py``, where VirtualServices and Gateway API HTTPRoutes send a
request in ``traffic.py``, all re-exported here.

Every rule of every applicable, enforced ALLOW and DENY policy is evaluated in full (no
short-circuit), so an unsupported or malformed field raises whether or not an earlier rule
already decided the request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.oracle.network_policy import Peer, connection_allowed, egress_allowed, ingress_allowed
from tests.oracle.sidecar import (
    Caller,
    RegistryService,
    external_services,
    proxy_outcome,
    registry,
    visible_to,
)
from tests.oracle.traffic import (
    HttpRequest,
    gateway_api_backends,
    subset_labels,
    virtual_service_destinations,
)

__all__ = [
    "Caller",
    "HttpRequest",
    "Peer",
    "RegistryService",
    "Request",
    "connection_allowed",
    "decide",
    "egress_allowed",
    "external_services",
    "gateway_api_backends",
    "ingress_allowed",
    "proxy_outcome",
    "registry",
    "subset_labels",
    "virtual_service_destinations",
    "visible_to",
]

_API_VERSIONS = frozenset({"security.istio.io/v1", "security.istio.io/v1beta1"})
_ACTIONS = frozenset({"ALLOW", "DENY", "AUDIT", "CUSTOM"})
_DRY_RUN = "istio.io/dry-run"
_HEADER_KEY = re.compile(r"request\.headers\[([^\[\]]+)\]")

_SPEC_FIELDS = frozenset({"selector", "action", "rules", "provider"})
_SPEC_UNSUPPORTED = frozenset({"targetRef", "targetRefs"})
_RULE_FIELDS = frozenset({"from", "to", "when"})
_SOURCE_FIELDS = frozenset(
    {
        "principals",
        "notPrincipals",
        "requestPrincipals",
        "notRequestPrincipals",
        "namespaces",
        "notNamespaces",
        "remoteIpBlocks",
        "notRemoteIpBlocks",
    }
)
_SOURCE_UNSUPPORTED = frozenset({"ipBlocks", "notIpBlocks"})
_OPERATION_FIELDS = frozenset({"methods", "notMethods", "paths", "notPaths", "ports", "notPorts"})
_OPERATION_UNSUPPORTED = frozenset({"hosts", "notHosts"})
_CONDITION_FIELDS = frozenset({"key", "values", "notValues"})


@dataclass(frozen=True)
class Request:
    """One HTTP request as the destination workload's proxy sees it.

    ``principal`` is the peer identity from the client's mTLS certificate, without
    ``spiffe://`` (``cluster.local/ns/shop/sa/web``); None means a plaintext, unauthenticated
    caller. ``namespace`` is the caller's namespace, which Istio also derives from that
    certificate. ``port`` is the destination (container) port; ``headers`` have lowercase names.
    The request never carries a JWT, so it has no request principal. ``remote_ip`` is the
    original client's address (what ``remoteIpBlocks`` match: the connection's peer, or the
    address trusted front proxies forward); None when the request names none.
    """

    principal: str | None
    namespace: str | None
    method: str
    path: str
    port: int
    headers: Mapping[str, str] = field(default_factory=dict)
    remote_ip: str | None = None


def decide(
    policies: Iterable[Mapping[str, Any]],
    request: Request,
    *,
    workload_labels: Mapping[str, str],
    workload_namespace: str,
    root_namespace: str = "istio-system",
) -> bool:
    """Whether Istio allows ``request`` to the workload, given every rendered object.

    Objects that are not AuthorizationPolicies are skipped, so callers can pass a whole
    rendering. Documented order: a matching DENY policy denies; otherwise, with no ALLOW
    policy the request is allowed; otherwise it is allowed iff some ALLOW policy matches.
    AUDIT and CUSTOM policies never change the native decision, and dry-run policies are
    not enforced.
    """
    applicable = [
        policy
        for policy in policies
        if _is_authorization_policy(policy)
        and _applies_to(policy, workload_labels, workload_namespace, root_namespace)
        and not _is_dry_run(policy)
    ]
    denies = [_policy_matches(p, request) for p in applicable if _action(p) == "DENY"]
    allows = [_policy_matches(p, request) for p in applicable if _action(p) == "ALLOW"]
    if any(denies):
        return False
    if not allows:
        return True
    return any(allows)


def _is_authorization_policy(obj: Mapping[str, Any]) -> bool:
    """Skip other kinds; an AuthorizationPolicy of an unknown API version is an error, since
    its fields might not mean what this oracle assumes."""
    if obj.get("kind") != "AuthorizationPolicy":
        return False
    if obj.get("apiVersion") not in _API_VERSIONS:
        raise ValueError(f"unsupported AuthorizationPolicy apiVersion {obj.get('apiVersion')!r}")
    return True


def _metadata(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata: Mapping[str, Any] = policy.get("metadata") or {}
    return metadata


def _spec(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    """The spec, checked for fields whose meaning the oracle does not model."""
    spec: Mapping[str, Any] = policy.get("spec") or {}
    _check_fields(spec, _SPEC_FIELDS, _SPEC_UNSUPPORTED, "spec")
    return spec


def _applies_to(
    policy: Mapping[str, Any],
    labels: Mapping[str, str],
    namespace: str,
    root_namespace: str,
) -> bool:
    """A policy applies to the workloads of its own namespace, or of every namespace when it
    lives in the root namespace, narrowed by ``selector.matchLabels`` (a subset of the
    workload's labels); no selector selects them all."""
    policy_namespace = _metadata(policy).get("namespace")
    if not policy_namespace:
        raise ValueError(f"AuthorizationPolicy {_metadata(policy).get('name')!r} has no namespace")
    if policy_namespace not in (namespace, root_namespace):
        return False
    selector: Mapping[str, Any] = _spec(policy).get("selector") or {}
    match_labels: Mapping[str, str] = selector.get("matchLabels") or {}
    return all(labels.get(key) == value for key, value in match_labels.items())


def _is_dry_run(policy: Mapping[str, Any]) -> bool:
    """``istio.io/dry-run: "true"`` policies are evaluated only for logs and metrics."""
    annotations: Mapping[str, str] = _metadata(policy).get("annotations") or {}
    return annotations.get(_DRY_RUN) == "true"


def _action(policy: Mapping[str, Any]) -> str:
    """The action, ALLOW when unset (Istio's default)."""
    action = _spec(policy).get("action") or "ALLOW"
    if action not in _ACTIONS:
        raise ValueError(f"unknown AuthorizationPolicy action {action!r}")
    return str(action)


def _policy_matches(policy: Mapping[str, Any], request: Request) -> bool:
    """A policy matches when at least one rule matches; no rules never matches (so an ALLOW
    policy without rules, like ``spec: {}``, allows nothing)."""
    rules: Sequence[Mapping[str, Any]] = _spec(policy).get("rules") or []
    return any([_rule_matches(rule, request) for rule in rules])


def _rule_matches(rule: Mapping[str, Any], request: Request) -> bool:
    """At least one source, at least one operation and every condition must match; an absent
    (or empty) ``from``/``to``/``when`` places no constraint, so ``{}`` matches everything."""
    _check_fields(rule, _RULE_FIELDS, frozenset(), "rule")
    sources: Sequence[Mapping[str, Any]] = rule.get("from") or []
    operations: Sequence[Mapping[str, Any]] = rule.get("to") or []
    conditions: Sequence[Mapping[str, Any]] = rule.get("when") or []
    source_hits = [_source_matches(entry.get("source") or {}, request) for entry in sources]
    operation_hits = [
        _operation_matches(entry.get("operation") or {}, request) for entry in operations
    ]
    condition_hits = [_condition_matches(condition, request) for condition in conditions]
    return (
        (not sources or any(source_hits))
        and (not operations or any(operation_hits))
        and all(condition_hits)
    )


def _source_matches(source: Mapping[str, Any], request: Request) -> bool:
    """Every present field must match (fields are ANDed).

    Principals and namespaces come from the peer certificate: a plaintext caller has neither,
    and Istio compares these fields against an empty value (security bulletin
    ISTIO-SECURITY-2021-004), so ``principals`` never matches it while ``notPrincipals`` and
    ``notNamespaces`` do. The caller never presents a JWT, so the request principal is empty.
    """
    _check_fields(source, _SOURCE_FIELDS, _SOURCE_UNSUPPORTED, "source")
    authenticated = request.principal is not None
    actual = {
        "principals": request.principal or "",
        "namespaces": (request.namespace or "") if authenticated else "",
        "requestPrincipals": "",
    }
    strings = [_string_field(source, name, value) for name, value in actual.items()]
    return all(strings) and _remote_ip_field(source, request.remote_ip)


def _remote_ip_field(source: Mapping[str, Any], remote_ip: str | None) -> bool:
    """``remoteIpBlocks`` match when the client address lies in one of the CIDRs (or equals
    a bare address); ``notRemoteIpBlocks`` when it lies in none. A request without an
    address matches no block."""
    address = ipaddress.ip_address(remote_ip) if remote_ip is not None else None

    def inside(block: object) -> bool:
        network = ipaddress.ip_network(str(block), strict=False)
        return address is not None and address in network

    positive = [inside(block) for block in source.get("remoteIpBlocks") or []]
    negative = [inside(block) for block in source.get("notRemoteIpBlocks") or []]
    return (not positive or any(positive)) and not any(negative)


def _operation_matches(operation: Mapping[str, Any], request: Request) -> bool:
    """Every present field must match; ports compare exactly (no wildcards), the others as
    strings with exact, prefix, suffix and presence forms."""
    _check_fields(operation, _OPERATION_FIELDS, _OPERATION_UNSUPPORTED, "operation")
    return all(
        [
            _string_field(operation, "methods", request.method),
            _string_field(operation, "paths", request.path, paths=True),
            _port_field(operation, request.port),
        ]
    )


def _string_field(
    container: Mapping[str, Any], name: str, actual: str, *, paths: bool = False
) -> bool:
    """``name`` matches when any of its values matches; ``notName`` when none does. Either
    absent (or empty, which protobuf cannot tell from absent) places no constraint."""
    negative = "not" + name[0].upper() + name[1:]
    positive_hits = [_string_matches(v, actual, paths=paths) for v in container.get(name) or []]
    negative_hits = [_string_matches(v, actual, paths=paths) for v in container.get(negative) or []]
    return (not positive_hits or any(positive_hits)) and not any(negative_hits)


def _port_field(operation: Mapping[str, Any], port: int) -> bool:
    """``ports`` and ``notPorts`` support only exact matching of port numbers."""
    positive = [_port(value) == port for value in operation.get("ports") or []]
    negative = [_port(value) == port for value in operation.get("notPorts") or []]
    return (not positive or any(positive)) and not any(negative)


def _port(value: object) -> int:
    text = str(value)
    if not text.isdecimal():
        raise ValueError(f"port {value!r} is not a number")
    return int(text)


def _condition_matches(condition: Mapping[str, Any], request: Request) -> bool:
    """A ``request.headers[name]`` condition: ``values`` need the header present and matching
    one of them; ``notValues`` need it absent or matching none of them."""
    _check_fields(condition, _CONDITION_FIELDS, frozenset(), "condition")
    key = str(condition.get("key", ""))
    header = _HEADER_KEY.fullmatch(key)
    if header is None:
        raise NotImplementedError(f"condition key {key!r} (only request.headers[...] is modelled)")
    values: Sequence[str] = condition.get("values") or []
    not_values: Sequence[str] = condition.get("notValues") or []
    if not values and not not_values:
        raise ValueError(f"condition {key!r} sets neither values nor notValues")
    actual = request.headers.get(header.group(1).lower())
    positive = [actual is not None and _string_matches(v, actual) for v in values]
    negative = [actual is not None and _string_matches(v, actual) for v in not_values]
    return (not values or any(positive)) and not any(negative)


def _string_matches(pattern: object, actual: str, *, paths: bool = False) -> bool:
    """Istio's string forms: ``*`` is presence (any non-empty value), ``abc*`` a prefix match
    (matching ``abc`` itself, so ``/a/*`` matches ``/a/`` but not ``/a``), ``*abc`` a suffix
    match, anything else exact. Other wildcards and path templates are not modelled."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"match value {pattern!r} is not a non-empty string")
    if paths and ("{" in pattern or "}" in pattern):
        raise NotImplementedError(f"path template {pattern!r}")
    if pattern == "*":
        return actual != ""
    if "*" in pattern[1:-1] or (pattern.startswith("*") and pattern.endswith("*")):
        raise NotImplementedError(f"wildcard inside {pattern!r}")
    if pattern.endswith("*"):
        return actual.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return actual.endswith(pattern[1:])
    return actual == pattern


def _check_fields(
    obj: Mapping[str, Any],
    known: frozenset[str],
    unsupported: frozenset[str],
    where: str,
) -> None:
    """Refuse to guess: a field the oracle does not model raises NotImplementedError (when it
    constrains anything), and a field Istio does not define raises ValueError."""
    for name, value in obj.items():
        if name in unsupported:
            if value:
                raise NotImplementedError(f"{where} field {name!r} is not modelled")
        elif name not in known:
            raise ValueError(f"unknown {where} field {name!r}")
