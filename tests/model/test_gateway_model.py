"""`MeshSpec.ingress_gateways`: each form's defaults, the two ways to write them, and copies."""

from __future__ import annotations

from compiler.kinds.mesh.model import IngressGateway, MeshSpec, ResolvedGateway
from compiler.model.access import resolve_source
from compiler.model.graph import allowed_edges
from tests.helpers import compile_files


def test_the_default_mesh_has_one_classic_gateway() -> None:
    assert MeshSpec().ingress_gateways == (
        ResolvedGateway(
            name="istio-ingressgateway",
            api="istio",
            namespace="istio-system",
            service_account="istio-ingressgateway-service-account",
            selector=(("istio", "ingressgateway"),),
            deployment="istio-ingressgateway",
            ports=(8080, 8443),
            source_ranges=(),
            hosts=(),
            gateway=None,
        ),
    )


def test_gateway_api_defaults_follow_the_gateway_name() -> None:
    spec = MeshSpec.model_validate(
        {"ingressGateway": {"api": "gateway-api", "name": "shop", "namespace": "web"}}
    )
    [gateway] = spec.ingress_gateways
    assert gateway.service_account == gateway.deployment == "shop-istio"
    assert gateway.selector == (("gateway.networking.k8s.io/gateway-name", "shop"),)
    assert (gateway.namespace, gateway.ports, gateway.gateway) == ("web", (80,), None)


def test_overrides_win_and_ports_are_sorted_once() -> None:
    spec = MeshSpec.model_validate(
        {"ingressGateway": [{"deployment": "edge", "ports": [9443, 9080, 9443]}]}
    )
    [gateway] = spec.ingress_gateways
    assert (gateway.name, gateway.deployment, gateway.ports) == ("edge", "edge", (9080, 9443))


def test_a_copy_resolves_its_own_gateways() -> None:
    spec = MeshSpec()
    assert spec.ingress_gateways[0].name == "istio-ingressgateway"
    copy = spec.model_copy(update={"ingress_gateway": [IngressGateway(name="other")]})
    assert [g.name for g in copy.ingress_gateways] == ["other"]
    assert spec.ingress_gateways[0].name == "istio-ingressgateway"


POLICY = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: web, namespace: shop}
spec:
  service: web
  rules:
  - from: [{ingressGateway: true}, {ingressGateway: edge}]
"""
MESH = """\
apiVersion: meshc/v1
kind: Mesh
metadata: {name: m}
spec:
  ingressGateway:
  - {name: edge, namespace: edge}
  - {api: gateway-api, name: shop, namespace: shop}
"""


def test_sources_resolve_to_every_named_gateway_and_read_by_name() -> None:
    model = compile_files({"mesh.yaml": MESH, "web.yaml": POLICY}).model
    [rule] = model.policies[0].model.spec.rules
    every, edge = (resolve_source(source, "shop", model) for source in rule.from_)
    assert [p.value for p in every.principals] == [
        "spiffe://cluster.local/ns/edge/sa/istio-ingressgateway-service-account",
        "spiffe://cluster.local/ns/shop/sa/shop-istio",
    ]
    assert [p.value for p in edge.principals] == [every.principals[0].value]
    peers = {str(found.source) for found in allowed_edges(model)}
    assert peers == {"ingress-gateway", "ingress-gateway:edge"}
