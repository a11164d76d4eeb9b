"""Network default deny (issue 10 item 5), judged by evaluating the rendered NetworkPolicies
with tests/oracle (Kubernetes' semantics: both ends' policies must admit a connection).

Every declared call passes, on the callee's container ports; nothing undeclared does; every
pod keeps DNS, istiod's xDS/CA port and metrics scraping; Externals get their ports; the
ingress gateway in the namespace gets its listeners and its routes; and without the
caller-side egress the ingress-only per-service policies would break every call.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.helpers import compile_files
from tests.lower.support import render_files
from tests.oracle.istio import Peer, connection_allowed

MESH = """\
apiVersion: meshc/v1
kind: Mesh
metadata: {name: shop, namespace: shop}
spec:
  networkPolicy: {enabled: true, defaultDeny: true}
  ingressGateway: {api: gateway-api, name: web, namespace: shop, ports: [80]}
"""
SHOP = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: frontend, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
  calls: [checkout, stripe]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: checkout, namespace: shop}
spec:
  ports: [{name: grpc, port: 5050, protocol: grpc}]
  calls: [cart, ledger]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: cart, namespace: shop}
spec:
  ports: [{name: redis, port: 6379, protocol: tcp}]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: loadgenerator, namespace: shop}
spec: {calls: [frontend]}
---
apiVersion: meshc/v1
kind: Service
metadata: {name: recommendations, namespace: shop}
spec:
  ports: [{name: grpc, port: 8081, protocol: grpc}]
---
apiVersion: meshc/v1
kind: External
metadata: {name: stripe, namespace: shop}
spec:
  hosts: [api.stripe.com]
  ports: [{name: https, port: 443, protocol: https}]
---
apiVersion: meshc/v1
kind: External
metadata: {name: ledger, namespace: shop}
spec:
  hosts: [ledger.corp.example]
  ports: [{name: tcp, port: 5432, protocol: tcp}]
  addresses: [10.20.0.0/16]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: frontend, namespace: shop}
spec:
  service: frontend
  rules: [{from: [{service: loadgenerator}, {ingressGateway: true}]}]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  rules: [{from: [{service: frontend}]}]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: cart, namespace: shop}
spec:
  service: cart
  rules: [{from: [{service: checkout}]}]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: recommendations, namespace: shop}
spec:
  service: recommendations
  mode: shadow
  rules: [{from: [{service: frontend}]}]
"""


def pod(app: str, namespace: str = "shop") -> Peer:
    return Peer(namespace, {"app": app})


FRONTEND, CHECKOUT, CART = pod("frontend"), pod("checkout"), pod("cart")
LOADGEN, RECOMMENDATIONS = pod("loadgenerator"), pod("recommendations")
STRANGER = pod("debug-shell")
GATEWAY = Peer("shop", {"gateway.networking.k8s.io/gateway-name": "web"})
KUBE_DNS = Peer("kube-system", {"k8s-app": "kube-dns"})
ISTIOD = Peer("istio-system", {"app": "istiod"})
PROMETHEUS = Peer("monitoring", {"app": "prometheus"})
INTERNET = Peer(None, ip="198.51.100.9")
CALLS = [
    (LOADGEN, FRONTEND, 8080),
    (GATEWAY, FRONTEND, 8080),
    (FRONTEND, CHECKOUT, 5050),
    (CHECKOUT, CART, 6379),
]
"""Every in-mesh call the application makes (its manifests' wiring), on container ports."""


def render(mesh: str = MESH, shop: str = SHOP) -> list[dict[str, Any]]:
    return [obj for _, obj in render_files({"mesh.yaml": mesh, "shop.yaml": shop})]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render()


def test_every_declared_call_passes_and_nothing_else(rendered: list[dict[str, Any]]) -> None:
    for source, destination, port in CALLS:
        assert connection_allowed(rendered, source, destination, port), (source, destination)
    pods = [FRONTEND, CHECKOUT, CART, LOADGEN, RECOMMENDATIONS, STRANGER, GATEWAY]
    declared = {(id(s), id(d), p) for s, d, p in CALLS}
    for source in pods:
        for destination in pods:
            for port in (8080, 5050, 6379, 8081, 80):
                if source is destination or (id(source), id(destination), port) in declared:
                    continue
                allowed = connection_allowed(rendered, source, destination, port)
                assert not allowed, (source.labels, destination.labels, port)


def test_a_pod_meshc_does_not_know_is_closed_both_ways(rendered: list[dict[str, Any]]) -> None:
    assert not connection_allowed(rendered, STRANGER, CART, 6379)
    assert not connection_allowed(rendered, CHECKOUT, STRANGER, 9999)
    assert not connection_allowed(rendered, STRANGER, INTERNET, 443)


def test_every_pod_keeps_dns_istiod_and_metrics(rendered: list[dict[str, Any]]) -> None:
    for workload in (FRONTEND, CART, LOADGEN, STRANGER, GATEWAY):
        assert connection_allowed(rendered, workload, KUBE_DNS, 53, "UDP")
        assert connection_allowed(rendered, workload, KUBE_DNS, 53, "TCP")
        assert connection_allowed(rendered, workload, ISTIOD, 15012)
        assert not connection_allowed(rendered, workload, ISTIOD, 15010)  # plaintext xDS
        for port in (15020, 15090):
            assert connection_allowed(rendered, PROMETHEUS, workload, port)
        assert not connection_allowed(rendered, PROMETHEUS, workload, 15000)  # Envoy admin


def test_externals_get_their_ports_to_their_addresses_or_anywhere(
    rendered: list[dict[str, Any]],
) -> None:
    assert connection_allowed(rendered, FRONTEND, INTERNET, 443)
    assert not connection_allowed(rendered, FRONTEND, INTERNET, 80)
    assert not connection_allowed(rendered, CART, INTERNET, 443)  # cart calls no External
    inside = Peer(None, ip="10.20.3.4")
    assert connection_allowed(rendered, CHECKOUT, inside, 5432)
    assert not connection_allowed(rendered, CHECKOUT, Peer(None, ip="10.21.0.1"), 5432)
    assert not connection_allowed(rendered, FRONTEND, inside, 5432)


def test_the_gateway_in_the_namespace_keeps_its_listeners_and_routes(
    rendered: list[dict[str, Any]],
) -> None:
    assert connection_allowed(rendered, INTERNET, GATEWAY, 80)
    assert not connection_allowed(rendered, INTERNET, GATEWAY, 8080)
    assert not connection_allowed(rendered, GATEWAY, CHECKOUT, 5050)  # not allowed to it
    ranged = MESH.replace("ports: [80]}", "ports: [80], sourceRanges: [203.0.113.0/24]}")
    world = render(mesh=ranged)
    assert connection_allowed(world, Peer(None, ip="203.0.113.8"), GATEWAY, 80)
    assert not connection_allowed(world, INTERNET, GATEWAY, 80)


def test_shadow_mode_stays_open_at_layer_3(rendered: list[dict[str, Any]]) -> None:
    """A shadow-only service admits every caller live: its NetworkPolicy must not be
    stricter (its callers still need their own egress: the call must be declared)."""
    policy = objects_of(rendered)["shop/recommendations"]
    assert {"namespaceSelector": {}} in policy["spec"]["ingress"][0]["from"]
    declared = SHOP.replace(
        "calls: [checkout, stripe]", "calls: [checkout, stripe, recommendations]"
    )
    assert connection_allowed(render(shop=declared), FRONTEND, RECOMMENDATIONS, 8081)


def test_ingress_only_policies_under_a_namespace_deny_would_break_every_call() -> None:
    """Why each service carries egress: the per-service policies without it (what meshc
    renders when default deny is off) plus the namespace's deny drop every call."""
    denied = [o for o in render() if o["metadata"]["name"] == "meshc-default-deny"]
    off = MESH.replace("defaultDeny: true", "defaultDeny: false")
    ingress_only = [o for o in render(mesh=off) if o["kind"] == "NetworkPolicy"]
    assert ingress_only and all(o["spec"]["policyTypes"] == ["Ingress"] for o in ingress_only)
    for source, destination, port in CALLS:
        if source is not GATEWAY:
            assert not connection_allowed([*ingress_only, *denied], source, destination, port)


def test_without_default_deny_nothing_changes() -> None:
    off = MESH.replace("defaultDeny: true", "defaultDeny: false")
    names = {o["metadata"]["name"] for o in render(mesh=off) if o["kind"] == "NetworkPolicy"}
    assert names == {"frontend", "checkout", "cart"}  # the enforced services, ingress only


def test_every_network_policy_validates_against_kubernetes_schema(
    rendered: list[dict[str, Any]],
) -> None:
    policies = [o for o in rendered if o["kind"] == "NetworkPolicy"]
    assert {"meshc-default-deny", "meshc-gateway-web", "loadgenerator"} <= {
        o["metadata"]["name"] for o in policies
    }
    for obj in policies:
        kubernetes_validate.validate(obj, "1.30", strict=True)


def test_default_deny_needs_network_policies_enabled() -> None:
    mesh = MESH.replace("enabled: true", "enabled: false")
    compilation = compile_files({"mesh.yaml": mesh, "shop.yaml": SHOP})
    [error] = [d for d in compilation.blocking() if d.span.file == "mesh.yaml"]
    assert "defaultDeny needs enabled: true" in error.message


def objects_of(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o
        for o in rendered
        if o["kind"] == "NetworkPolicy"
    }


def test_an_external_without_addresses_is_noted_under_default_deny() -> None:
    compilation = compile_files({"mesh.yaml": MESH, "shop.yaml": SHOP})
    notes = [d for d in compilation.diagnostics if d.code == "MC247"]
    assert [d.message for d in notes] == [
        "External shop/stripe has no addresses: NetworkPolicy cannot select a host name, so "
        "its callers may open port 443 to every address"
    ]
    off = MESH.replace("defaultDeny: true", "defaultDeny: false")
    assert not [d for d in compile_files({"mesh.yaml": off, "shop.yaml": SHOP}).diagnostics
                if d.code == "MC247"]  # fmt: skip
