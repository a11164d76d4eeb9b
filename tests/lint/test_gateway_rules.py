"""Lint rules and validation of the Mesh's ingress gateways (MC230-MC233, MC103)."""

from __future__ import annotations

from compiler.api import Compilation
from compiler.diagnostics import Severity
from tests.helpers import compile_files, findings

SERVICE = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
  versions:
    v1: {labels: {version: v1}}
    v2: {labels: {version: v2}}
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: web, namespace: shop}
spec:
  service: web
  rules:
  - from: [{ingressGateway: SOURCE}]
"""
ROLLOUT = """\
---
apiVersion: meshc/v1
kind: Rollout
metadata: {name: web, namespace: shop}
spec: {service: web, stable: v1, split: {v1: 90, v2: 10}}
"""


def mesh(gateway: str, *, action: str = "deny") -> str:
    return (
        "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m, namespace: shop}\n"
        f"spec:\n  defaultAction: {action}\n  ingressGateway:\n{gateway}"
    )


def lint(
    gateway: str, *, source: str = "true", extra: str = "", action: str = "deny"
) -> Compilation:
    return compile_files(
        {
            "mesh.yaml": mesh(gateway, action=action),
            "shop.yaml": SERVICE.replace("SOURCE", source) + extra,
        }
    )


SHOP_GATEWAY = "    api: gateway-api\n    name: shop-gw\n    namespace: shop\n"
BOUND_CLASSIC = "    gateway: istio-system/public\n    hosts: [shop.example.com]\n"


def test_mc230_gateway_without_ports_under_default_deny() -> None:
    compilation = lint(SHOP_GATEWAY + "    ports: []\n")
    [finding] = findings(compilation, "MC230")
    assert finding.severity is Severity.ERROR
    assert finding.span.line == 10  # the ports: line of the Mesh
    assert "Gateway API gateway 'shop-gw' (shop)" in finding.message
    assert "default deny of namespace shop" in finding.message
    assert "ports" in finding.hint


def test_mc230_silent_with_ports_or_outside_the_default_deny() -> None:
    assert not findings(lint(SHOP_GATEWAY), "MC230")
    assert not findings(lint(SHOP_GATEWAY + "    ports: []\n", action="allow"), "MC230")
    elsewhere = SHOP_GATEWAY.replace("namespace: shop", "namespace: edge") + "    ports: []\n"
    assert not findings(lint(elsewhere), "MC230")


def test_mc230_list_form_points_at_the_item() -> None:
    listed = "  - {name: other, namespace: edge}\n  - api: gateway-api\n"
    listed += "    name: shop-gw\n    namespace: shop\n    ports: []\n"
    [finding] = findings(lint(listed), "MC230")
    assert finding.span.line == 11


def test_mc231_unknown_gateway_name() -> None:
    compilation = lint(SHOP_GATEWAY, source="shop-gateway")
    [finding] = findings(compilation, "MC231")
    assert finding.severity is Severity.ERROR
    assert "gateway 'shop-gateway'" in finding.message and "declared: shop-gw" in finding.message
    assert not compilation.ok


def test_mc231_true_with_no_gateway_at_all() -> None:
    compilation = compile_files(
        {
            "mesh.yaml": mesh("  []\n").replace("ingressGateway:\n  []", "ingressGateway: []"),
            "shop.yaml": SERVICE.replace("SOURCE", "true"),
        }
    )
    [finding] = findings(compilation, "MC231")
    assert "declared: none" in finding.message


def test_mc231_silent_for_known_names() -> None:
    assert not findings(lint(SHOP_GATEWAY, source="shop-gw"), "MC231")
    assert not findings(lint(SHOP_GATEWAY, source="true"), "MC231")


def test_mc232_rollout_of_a_gateway_called_service_with_an_unbound_classic_gateway() -> None:
    compilation = lint("    namespace: istio-system\n", extra=ROLLOUT)
    [finding] = findings(compilation, "MC232")
    assert finding.severity is Severity.WARNING
    assert "'istio-ingressgateway'" in finding.message
    assert "gateway: and hosts:" in finding.message


def test_mc232_silent_when_the_split_can_bind() -> None:
    assert not findings(lint(BOUND_CLASSIC, extra=ROLLOUT), "MC232")
    assert not findings(lint(SHOP_GATEWAY, extra=ROLLOUT), "MC232")
    assert not findings(lint("    namespace: istio-system\n"), "MC232")  # no Rollout


def test_mc232_names_what_is_missing() -> None:
    [finding] = findings(lint("    gateway: istio-system/public\n", extra=ROLLOUT), "MC232")
    assert "no hosts:" in finding.message and "gateway:" not in finding.message.split("no ")[1]


def test_mc233_ab_matches_do_not_reach_gateway_api_traffic() -> None:
    rollout = ROLLOUT.replace(
        "split: {v1: 90, v2: 10}}",
        "split: {v1: 90, v2: 10}, match: [{headers: {x-beta: {exact: '1'}}, version: v2}]}",
    )
    [finding] = findings(lint(SHOP_GATEWAY, extra=rollout), "MC233")
    assert "'shop-gw'" in finding.message and "match" in finding.message
    assert not findings(lint(BOUND_CLASSIC, extra=rollout), "MC233")


def test_gateway_api_gateway_needs_a_name() -> None:
    compilation = lint("    api: gateway-api\n    namespace: shop\n")
    [finding] = findings(compilation, "MC103")
    assert "needs name" in finding.message


def test_gateway_names_are_unique() -> None:
    twice = "  - {namespace: a}\n  - {namespace: b}\n"
    [finding] = findings(lint(twice), "MC103")
    assert "more than one gateway is named 'istio-ingressgateway'" in finding.message


def test_source_ranges_must_be_cidrs() -> None:
    [finding] = findings(lint(SHOP_GATEWAY + "    sourceRanges: [10.0.0.0/33]\n"), "MC103")
    assert "10.0.0.0/33" in finding.message


def test_a_gateway_api_gateway_takes_no_classic_gateway_ref() -> None:
    [finding] = findings(lint(SHOP_GATEWAY + "    gateway: shop/public\n"), "MC103")
    assert "classic Istio Gateway" in finding.message


SECOND = """\
---
apiVersion: meshc/v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  ports: [{name: http, port: 80, protocol: http}]
  versions:
    v1: {labels: {version: v1}}
    v2: {labels: {version: v2}}
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: api, namespace: shop}
spec:
  service: api
  rules:
  - from: [{ingressGateway: SOURCE}]
---
apiVersion: meshc/v1
kind: Rollout
metadata: {name: api, namespace: shop}
spec: {service: api, stable: v1, split: {v1: 50, v2: 50}}
"""


def test_mc234_two_rollouts_bound_to_one_gateway() -> None:
    compilation = lint(BOUND_CLASSIC, extra=ROLLOUT + SECOND.replace("SOURCE", "true"))
    [finding] = findings(compilation, "MC234")
    assert finding.message.startswith("shop/web: its split and that of shop/api")
    assert "shop.example.com" in finding.message


def test_mc234_silent_when_each_gateway_calls_one_service() -> None:
    gateways = (
        "  - {name: a, gateway: istio-system/a, hosts: [a.example.com]}\n"
        "  - {name: b, gateway: istio-system/b, hosts: [b.example.com]}\n"
    )
    compilation = lint(gateways, source="a", extra=ROLLOUT + SECOND.replace("SOURCE", "b"))
    assert not findings(compilation, "MC234")
    assert not findings(lint(BOUND_CLASSIC, extra=ROLLOUT), "MC234")
