"""`remoteIpBlocks` in the oracle's `istio.decide`, on hand-written policies: what an ingress
gateway's `sourceRanges` lower to."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oracle.istio import Request, decide

GATEWAY = {"istio": "ingressgateway"}


def ranges(*blocks: str, negative: bool = False) -> dict[str, Any]:
    name = "notRemoteIpBlocks" if negative else "remoteIpBlocks"
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "gw", "namespace": "istio-system"},
        "spec": {
            "selector": {"matchLabels": GATEWAY},
            "rules": [{"from": [{"source": {name: list(blocks)}}]}],
        },
    }


def from_ip(policy: dict[str, Any], address: str | None) -> bool:
    request = Request(None, None, "GET", "/", 8080, remote_ip=address)
    return decide([policy], request, workload_labels=GATEWAY, workload_namespace="istio-system")


def test_remote_ip_blocks_match_addresses_inside_the_ranges() -> None:
    policy = ranges("10.0.0.0/8", "192.0.2.1", "2001:db8::/32")
    assert from_ip(policy, "10.20.30.40")
    assert from_ip(policy, "192.0.2.1")
    assert from_ip(policy, "2001:db8::7")
    assert not from_ip(policy, "192.0.2.2")
    assert not from_ip(policy, None)


def test_not_remote_ip_blocks_match_addresses_outside() -> None:
    policy = ranges("10.0.0.0/8", negative=True)
    assert from_ip(policy, "192.0.2.1")
    assert not from_ip(policy, "10.1.1.1")


def test_ip_blocks_still_raise() -> None:
    policy = ranges()
    policy["spec"]["rules"] = [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]
    with pytest.raises(NotImplementedError):
        from_ip(policy, "10.0.0.1")
