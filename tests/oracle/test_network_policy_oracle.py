"""The NetworkPolicy oracle against the cases of Kubernetes' network policy documentation, so
the application tests that trust it rest on checked ground."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.oracle.istio import Peer, connection_allowed, egress_allowed, ingress_allowed

DB = Peer("default", {"role": "db"}, ip="10.1.0.5")
FRONTEND = Peer("default", {"role": "frontend"}, ip="10.1.0.6")
OTHER = Peer("default", {"role": "other"}, ip="10.1.0.7")
PROJECT_POD = Peer("myproject-ns", {"app": "x"}, namespace_labels={"project": "myproject"})
OUTSIDE = Peer(None, ip="172.17.0.9")
OUTSIDE_EXCEPTED = Peer(None, ip="172.17.1.9")
EGRESS_TARGET = Peer(None, ip="10.0.0.20")


def network_policy(spec: Mapping[str, Any], *, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": dict(spec),
    }


# The documentation's first example, "test-network-policy".
EXAMPLE = network_policy(
    {
        "podSelector": {"matchLabels": {"role": "db"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                    {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                    {"podSelector": {"matchLabels": {"role": "frontend"}}},
                ],
                "ports": [{"protocol": "TCP", "port": 6379}],
            }
        ],
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                "ports": [{"protocol": "TCP", "port": 5978}],
            }
        ],
    }
)


def test_no_policy_leaves_pods_open() -> None:
    assert connection_allowed([], OTHER, DB, 1234)
    assert connection_allowed([{"kind": "Service", "apiVersion": "v1"}], OTHER, DB, 1234)


def test_documentation_example_ingress() -> None:
    assert ingress_allowed([EXAMPLE], FRONTEND, DB, 6379)
    assert ingress_allowed([EXAMPLE], PROJECT_POD, DB, 6379)
    assert ingress_allowed([EXAMPLE], OUTSIDE, DB, 6379)
    assert not ingress_allowed([EXAMPLE], OUTSIDE_EXCEPTED, DB, 6379)
    assert not ingress_allowed([EXAMPLE], OTHER, DB, 6379)
    assert not ingress_allowed([EXAMPLE], FRONTEND, DB, 6380)
    assert not ingress_allowed([EXAMPLE], FRONTEND, DB, 6379, "UDP")


def test_documentation_example_egress() -> None:
    assert egress_allowed([EXAMPLE], DB, EGRESS_TARGET, 5978)
    assert not egress_allowed([EXAMPLE], DB, EGRESS_TARGET, 5979)
    assert not egress_allowed([EXAMPLE], DB, FRONTEND, 5978)


def test_unselected_pods_are_not_isolated() -> None:
    assert connection_allowed([EXAMPLE], OTHER, FRONTEND, 80)


def test_both_sides_must_allow() -> None:
    """The destination admits the frontend, but the frontend's own egress is isolated."""
    deny_frontend_egress = network_policy(
        {"podSelector": {"matchLabels": {"role": "frontend"}}, "policyTypes": ["Egress"]}
    )
    assert ingress_allowed([EXAMPLE, deny_frontend_egress], FRONTEND, DB, 6379)
    assert not connection_allowed([EXAMPLE, deny_frontend_egress], FRONTEND, DB, 6379)
    assert connection_allowed([EXAMPLE], FRONTEND, DB, 6379)


def test_default_deny_ingress_and_allow_all() -> None:
    deny_all = network_policy({"podSelector": {}, "policyTypes": ["Ingress"]})
    allow_all = network_policy({"podSelector": {}, "ingress": [{}]})
    assert not connection_allowed([deny_all], FRONTEND, DB, 80)
    assert connection_allowed([deny_all], DB, OUTSIDE, 80)  # egress untouched
    assert connection_allowed([deny_all, allow_all], FRONTEND, DB, 80)


def test_default_deny_egress() -> None:
    deny_all = network_policy({"podSelector": {}, "policyTypes": ["Egress"]})
    assert not connection_allowed([deny_all], FRONTEND, OUTSIDE, 443)
    assert connection_allowed([deny_all], OUTSIDE, FRONTEND, 443)


def test_policy_types_default_from_the_rules() -> None:
    """Without policyTypes a policy isolates ingress always and egress only when it has egress
    rules; an empty egress list does not isolate egress."""
    ingress_only = network_policy({"podSelector": {}, "egress": []})
    assert not ingress_allowed([ingress_only], FRONTEND, DB, 80)
    assert egress_allowed([ingress_only], FRONTEND, DB, 80)
    with_egress = network_policy({"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]})
    assert egress_allowed([with_egress], FRONTEND, OUTSIDE, 53)
    assert not egress_allowed([with_egress], FRONTEND, OUTSIDE, 443)
    assert not ingress_allowed([with_egress], FRONTEND, DB, 80)


def test_rules_of_every_selecting_policy_are_a_union() -> None:
    a = network_policy(
        {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{"ports": [{"port": 1}]}]}
    )
    b = network_policy({"podSelector": {}, "ingress": [{"ports": [{"port": 2}]}]})
    assert ingress_allowed([a, b], OTHER, DB, 1)
    assert ingress_allowed([a, b], OTHER, DB, 2)
    assert not ingress_allowed([a, b], OTHER, DB, 3)
    assert not ingress_allowed([a, b], OTHER, FRONTEND, 1)


def test_policy_selects_only_its_own_namespace() -> None:
    elsewhere = network_policy({"podSelector": {}, "policyTypes": ["Ingress"]}, namespace="other")
    assert connection_allowed([elsewhere], FRONTEND, DB, 80)


def test_pod_selector_alone_means_the_policy_namespace() -> None:
    policy = network_policy(
        {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "x"}}}]}]}
    )
    same_namespace = Peer("default", {"app": "x"})
    assert ingress_allowed([policy], same_namespace, DB, 80)
    assert not ingress_allowed([policy], PROJECT_POD, DB, 80)


def test_namespace_and_pod_selector_in_one_peer_are_anded() -> None:
    """The documentation's contrast: one element with both selectors versus two elements."""
    both = {
        "namespaceSelector": {"matchLabels": {"user": "alice"}},
        "podSelector": {"matchLabels": {"role": "client"}},
    }
    anded = network_policy({"podSelector": {}, "ingress": [{"from": [both]}]})
    ored = network_policy(
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": both["namespaceSelector"]},
                        {"podSelector": both["podSelector"]},
                    ]
                }
            ],
        }
    )
    alice_client = Peer("a", {"role": "client"}, namespace_labels={"user": "alice"})
    alice_other = Peer("a", {"role": "server"}, namespace_labels={"user": "alice"})
    local_client = Peer("default", {"role": "client"})
    assert ingress_allowed([anded], alice_client, DB, 80)
    assert not ingress_allowed([anded], alice_other, DB, 80)
    assert not ingress_allowed([anded], local_client, DB, 80)
    assert ingress_allowed([ored], alice_other, DB, 80)
    assert ingress_allowed([ored], local_client, DB, 80)


def test_empty_namespace_selector_means_every_namespace() -> None:
    policy = network_policy({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]})
    assert ingress_allowed([policy], PROJECT_POD, DB, 80)
    assert not ingress_allowed([policy], OUTSIDE, DB, 80)


def test_namespace_name_label_is_automatic() -> None:
    by_name = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}
    policy = network_policy({"podSelector": {}, "ingress": [{"from": [by_name]}]})
    assert ingress_allowed([policy], Peer("shop", {}), DB, 80)
    assert not ingress_allowed([policy], Peer("shop-2", {}), DB, 80)


@pytest.mark.parametrize(
    ("expression", "labels", "expected"),
    [
        ({"key": "env", "operator": "In", "values": ["prod", "qa"]}, {"env": "qa"}, True),
        ({"key": "env", "operator": "In", "values": ["prod"]}, {"env": "qa"}, False),
        ({"key": "env", "operator": "In", "values": ["prod"]}, {}, False),
        ({"key": "env", "operator": "NotIn", "values": ["prod"]}, {"env": "qa"}, True),
        ({"key": "env", "operator": "NotIn", "values": ["prod"]}, {}, True),
        ({"key": "env", "operator": "NotIn", "values": ["prod"]}, {"env": "prod"}, False),
        ({"key": "env", "operator": "Exists"}, {"env": ""}, True),
        ({"key": "env", "operator": "Exists"}, {}, False),
        ({"key": "env", "operator": "DoesNotExist"}, {}, True),
        ({"key": "env", "operator": "DoesNotExist"}, {"env": "x"}, False),
    ],
)
def test_match_expressions(
    expression: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    selector = {"matchExpressions": [expression]}
    policy = network_policy({"podSelector": {}, "ingress": [{"from": [{"podSelector": selector}]}]})
    assert ingress_allowed([policy], Peer("default", labels), DB, 80) is expected


def test_match_labels_and_expressions_are_anded() -> None:
    selector = {
        "matchLabels": {"app": "x"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}],
    }
    policy = network_policy({"podSelector": selector, "policyTypes": ["Ingress"]})
    assert not ingress_allowed([policy], OTHER, Peer("default", {"app": "x", "tier": "web"}), 80)
    assert ingress_allowed([policy], OTHER, Peer("default", {"app": "x", "tier": "db"}), 80)


def test_port_ranges_and_protocols() -> None:
    ranged = network_policy(
        {
            "podSelector": {},
            "egress": [{"ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}]}],
        }
    )
    assert egress_allowed([ranged], DB, OUTSIDE, 32000)
    assert egress_allowed([ranged], DB, OUTSIDE, 32768)
    assert not egress_allowed([ranged], DB, OUTSIDE, 32769)
    assert not egress_allowed([ranged], DB, OUTSIDE, 32000, "UDP")
    any_udp = network_policy({"podSelector": {}, "egress": [{"ports": [{"protocol": "UDP"}]}]})
    assert egress_allowed([any_udp], DB, OUTSIDE, 53, "UDP")
    assert not egress_allowed([any_udp], DB, OUTSIDE, 53)


def test_named_ports_refer_to_the_destination() -> None:
    policy = network_policy({"podSelector": {}, "ingress": [{"ports": [{"port": "grpc"}]}]})
    server = Peer("default", {"role": "db"}, named_ports={"grpc": 7070})
    assert ingress_allowed([policy], OTHER, server, 7070)
    assert not ingress_allowed([policy], OTHER, server, 7071)
    with pytest.raises(NotImplementedError):
        ingress_allowed([policy], OTHER, DB, 7070)


def test_ip_block_matches_pods_by_address() -> None:
    """The wider reading: a pod whose IP falls inside a block is matched by it."""
    wide = network_policy(
        {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}
    )
    assert egress_allowed([wide], DB, FRONTEND, 80)
    assert not egress_allowed([wide], DB, Peer("default", {}), 80)  # a pod without a known IP
    narrowed = network_policy(
        {
            "podSelector": {},
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
        }
    )
    assert not egress_allowed([narrowed], DB, FRONTEND, 80)
    assert egress_allowed([narrowed], DB, OUTSIDE, 80)


def test_selectors_never_match_addresses_outside_the_cluster() -> None:
    policy = network_policy({"podSelector": {}, "egress": [{"to": [{"namespaceSelector": {}}]}]})
    assert not egress_allowed([policy], DB, OUTSIDE, 443)
    assert egress_allowed([policy], DB, FRONTEND, 443)


@pytest.mark.parametrize(
    "spec",
    [
        {"policyTypes": ["Ingress"]},
        {"podSelector": {}, "policyTypes": ["Sideways"]},
        {"podSelector": {}, "ingress": [{"from": [{}]}]},
        {
            "podSelector": {},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}],
        },
        {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "endPort": 70}]}]},
        {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]},
        {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
        {"podSelector": {}, "ingres": []},
    ],
)
def test_malformed_policies_raise(spec: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        connection_allowed([network_policy(spec)], OTHER, DB, 80)
