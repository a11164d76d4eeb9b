"""An evaluator of Kubernetes' documented NetworkPolicy semantics, independent of meshc.

Written from the Kubernetes reference (kubernetes.io/docs/concepts/services-networking/
network-policies/ and the field comments of ``networking/v1`` ``NetworkPolicySpec``): a pod is
isolated for a direction once any NetworkPolicy of that type selects it; an isolated pod admits
a connection only if some rule of some selecting policy allows it (rules are a union); a
connection needs both the source's egress and the destination's ingress to allow it. Objects
are plain dicts, so a misunderstanding in the compiler cannot leak into the judgement.

What the oracle cannot decide faithfully raises ``NotImplementedError`` (named ports on a peer
that declares none); malformed input raises ``ValueError``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Peer", "connection_allowed", "egress_allowed", "ingress_allowed"]

Direction = Literal["Ingress", "Egress"]

_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
_SPEC_FIELDS = frozenset({"podSelector", "policyTypes", "ingress", "egress"})
_PEER_FIELDS = frozenset({"podSelector", "namespaceSelector", "ipBlock"})
_PORT_FIELDS = frozenset({"port", "endPort", "protocol"})
_SELECTOR_FIELDS = frozenset({"matchLabels", "matchExpressions"})
_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod (``namespace`` set) or an address outside the cluster
    (``namespace`` None, ``ip`` set).

    ``namespace_labels`` default to the label every namespace carries,
    ``kubernetes.io/metadata.name: <namespace>``. ``named_ports`` maps the pod's container port
    names to numbers, for policies that name a port.
    """

    namespace: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None
    namespace_labels: Mapping[str, str] | None = None
    named_ports: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.namespace is None and self.ip is None:
            raise ValueError("a peer outside the cluster needs an ip")

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None

    def namespace_label_set(self) -> Mapping[str, str]:
        if self.namespace_labels is not None:
            return self.namespace_labels
        return {_NAMESPACE_NAME_LABEL: self.namespace or ""}


def connection_allowed(
    policies: Iterable[Mapping[str, Any]],
    source: Peer,
    destination: Peer,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether a new connection from ``source`` to ``destination`` on ``port``/``protocol`` is
    admitted: the source's egress and the destination's ingress must both allow it. Objects
    that are not NetworkPolicies are skipped, so callers can pass a whole rendering."""
    rendered = list(policies)
    return egress_allowed(rendered, source, destination, port, protocol) and ingress_allowed(
        rendered, source, destination, port, protocol
    )


def ingress_allowed(
    policies: Iterable[Mapping[str, Any]],
    source: Peer,
    destination: Peer,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """The destination pod's side: open unless isolated for ingress, else some ingress rule of
    a selecting policy must admit the source on the port. Outside the cluster nothing is
    enforced, so a non-pod destination always admits."""
    if not destination.is_pod:
        return True
    return _direction_allows(policies, "Ingress", destination, source, destination, port, protocol)


def egress_allowed(
    policies: Iterable[Mapping[str, Any]],
    source: Peer,
    destination: Peer,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """The source pod's side: open unless isolated for egress, else some egress rule of a
    selecting policy must admit the destination on the port."""
    if not source.is_pod:
        return True
    return _direction_allows(policies, "Egress", source, destination, destination, port, protocol)


def _direction_allows(
    policies: Iterable[Mapping[str, Any]],
    direction: Direction,
    subject: Peer,
    other: Peer,
    port_owner: Peer,
    port: int,
    protocol: str,
) -> bool:
    """``subject`` is the pod whose isolation is judged, ``other`` the far end, ``port_owner``
    the pod whose named ports a policy port may refer to (always the destination)."""
    if protocol not in _PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    selecting = [
        policy
        for policy in policies
        if _is_network_policy(policy)
        and direction in _policy_types(policy)
        and _selects(policy, subject)
    ]
    if not selecting:
        return True
    hits = [
        _rule_allows(rule, direction, policy, other, port_owner, port, protocol)
        for policy in selecting
        for rule in _rules(policy, direction)
    ]
    return any(hits)


def _is_network_policy(obj: Mapping[str, Any]) -> bool:
    if obj.get("kind") != "NetworkPolicy":
        return False
    if obj.get("apiVersion") != "networking.k8s.io/v1":
        raise ValueError(f"unsupported NetworkPolicy apiVersion {obj.get('apiVersion')!r}")
    return True


def _spec(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = policy.get("spec") or {}
    _check_fields(spec, _SPEC_FIELDS, "spec")
    if "podSelector" not in spec:
        raise ValueError(f"NetworkPolicy {_name(policy)!r} has no spec.podSelector")
    return spec


def _name(policy: Mapping[str, Any]) -> str:
    metadata: Mapping[str, Any] = policy.get("metadata") or {}
    return str(metadata.get("name"))


def _namespace(policy: Mapping[str, Any]) -> str:
    metadata: Mapping[str, Any] = policy.get("metadata") or {}
    namespace = metadata.get("namespace")
    if not namespace:
        raise ValueError(f"NetworkPolicy {_name(policy)!r} has no namespace")
    return str(namespace)


def _policy_types(policy: Mapping[str, Any]) -> frozenset[str]:
    """``policyTypes`` as given; when absent, Ingress always and Egress when the policy has
    egress rules (the API server's defaulting)."""
    spec = _spec(policy)
    given: Sequence[str] | None = spec.get("policyTypes")
    if given:
        unknown = set(given) - {"Ingress", "Egress"}
        if unknown:
            raise ValueError(f"unknown policyTypes {sorted(unknown)}")
        return frozenset(given)
    return frozenset({"Ingress", "Egress"} if spec.get("egress") else {"Ingress"})


def _selects(policy: Mapping[str, Any], pod: Peer) -> bool:
    """A policy selects pods of its own namespace whose labels match ``podSelector`` (``{}``
    selects them all)."""
    return pod.namespace == _namespace(policy) and label_selector_matches(
        _spec(policy)["podSelector"], pod.labels
    )


def _rules(policy: Mapping[str, Any], direction: Direction) -> Sequence[Mapping[str, Any]]:
    """The rules of one direction; none means the policy only isolates."""
    rules: Sequence[Mapping[str, Any]] = _spec(policy).get(direction.lower()) or []
    return rules


def _rule_allows(
    rule: Mapping[str, Any],
    direction: Direction,
    policy: Mapping[str, Any],
    other: Peer,
    port_owner: Peer,
    port: int,
    protocol: str,
) -> bool:
    """A rule admits when some peer matches and some port matches; a missing or empty
    ``from``/``to`` matches every peer and a missing or empty ``ports`` every port."""
    peers_field = "from" if direction == "Ingress" else "to"
    _check_fields(rule, frozenset({peers_field, "ports"}), f"{direction.lower()} rule")
    peers: Sequence[Mapping[str, Any]] = rule.get(peers_field) or []
    ports: Sequence[Mapping[str, Any]] = rule.get("ports") or []
    peer_hits = [_peer_matches(peer, _namespace(policy), other) for peer in peers]
    port_hits = [_port_matches(entry, port_owner, port, protocol) for entry in ports]
    return (not peers or any(peer_hits)) and (not ports or any(port_hits))


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Peer) -> bool:
    """``ipBlock`` stands alone; ``podSelector`` alone means pods of the policy's namespace,
    ``namespaceSelector`` alone every pod of the matching namespaces, both together the
    matching pods of the matching namespaces.

    An ipBlock matches any peer whose address is in it, pods included: the reference leaves
    pod IPs implementation-defined, and the wider reading keeps a broad block from hiding an
    allowed path."""
    _check_fields(peer, _PEER_FIELDS, "peer")
    if "ipBlock" in peer:
        if len(peer) != 1:
            raise ValueError("a peer with ipBlock may not also set a selector")
        return _ip_block_matches(peer["ipBlock"], other.ip)
    if not peer:
        raise ValueError("a peer must set podSelector, namespaceSelector or ipBlock")
    if not other.is_pod:
        return False
    pod_selector = peer.get("podSelector")
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        in_namespace = other.namespace == policy_namespace
    else:
        in_namespace = label_selector_matches(namespace_selector, other.namespace_label_set())
    pod_matches = pod_selector is None or label_selector_matches(pod_selector, other.labels)
    return in_namespace and pod_matches


def _ip_block_matches(block: Mapping[str, Any], ip: str | None) -> bool:
    _check_fields(block, frozenset({"cidr", "except"}), "ipBlock")
    if "cidr" not in block:
        raise ValueError("ipBlock needs a cidr")
    if ip is None:
        return False
    address = ipaddress.ip_address(ip)
    network = ipaddress.ip_network(str(block["cidr"]), strict=False)
    excepted = [ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or []]
    for exception in excepted:
        if not exception.subnet_of(network):  # type: ignore[arg-type]
            raise ValueError(f"ipBlock except {exception} is outside cidr {network}")
    return address in network and not any(address in exception for exception in excepted)


def _port_matches(entry: Mapping[str, Any], destination: Peer, port: int, protocol: str) -> bool:
    """``protocol`` defaults to TCP; no ``port`` means every port of the protocol; a number
    with ``endPort`` is an inclusive range; a name refers to the destination pod's container
    port of that name."""
    _check_fields(entry, _PORT_FIELDS, "port")
    entry_protocol = entry.get("protocol") or "TCP"
    if entry_protocol not in _PROTOCOLS:
        raise ValueError(f"unknown protocol {entry_protocol!r}")
    if entry_protocol != protocol:
        return False
    value = entry.get("port")
    end = entry.get("endPort")
    if value is None:
        if end is not None:
            raise ValueError("endPort needs port")
        return True
    if isinstance(value, str) and not value.isdecimal():
        if end is not None:
            raise ValueError("endPort needs a numeric port")
        if not destination.named_ports:
            raise NotImplementedError(f"named port {value!r} on a peer without named_ports")
        return destination.named_ports.get(value) == port
    start = int(value)
    if end is None:
        return port == start
    if int(end) < start:
        raise ValueError(f"endPort {end} is below port {start}")
    return start <= port <= int(end)


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A ``LabelSelector``: every ``matchLabels`` pair and every ``matchExpressions``
    requirement must hold (ANDed); an empty selector matches everything."""
    selector = selector or {}
    _check_fields(selector, _SELECTOR_FIELDS, "selector")
    match_labels: Mapping[str, str] = selector.get("matchLabels") or {}
    expressions: Sequence[Mapping[str, Any]] = selector.get("matchExpressions") or []
    return all(labels.get(k) == v for k, v in match_labels.items()) and all(
        [_requirement_holds(expression, labels) for expression in expressions]
    )


def _requirement_holds(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """In: the key is present with one of the values; NotIn: absent or none of them; Exists
    and DoesNotExist take no values."""
    _check_fields(expression, frozenset({"key", "operator", "values"}), "matchExpressions")
    key = str(expression.get("key", ""))
    operator = expression.get("operator")
    values: Sequence[str] = expression.get("values") or []
    if operator not in _OPERATORS:
        raise ValueError(f"unknown selector operator {operator!r}")
    if operator in ("In", "NotIn") and not values:
        raise ValueError(f"operator {operator} needs values")
    if operator in ("Exists", "DoesNotExist") and values:
        raise ValueError(f"operator {operator} takes no values")
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    return key not in labels


def _check_fields(obj: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise ValueError(f"unknown {where} field {unknown[0]!r}")
