"""Ingress gateways: their ALLOW beside meshc's default deny, and Rollout splits that gateway
traffic follows — judged by evaluating the rendered objects with the oracles in
tests/oracle (authorization by `istio.decide`, routing by `routing`), never by reading
the emitters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from compiler.api import compile_tree
from compiler.artifacts import Artifacts
from compiler.lower import lower
from compiler.verify.crds import check_artifacts, load_crd_files
from tests.helpers import NOW, compile_files, findings, tree
from tests.lower.support import REFERENCE_CRDS, render_files
from tests.oracle.istio import Request, decide
from tests.oracle.traffic import HttpRequest, gateway_api_backends, virtual_service_destinations

GATEWAY_API = """\
  - api: gateway-api
    name: shop-gateway
    namespace: shop
    hosts: [shop.example.com]
"""
CLASSIC = """\
  - name: edge
    namespace: edge
    selector: {istio: edge-ingress}
    serviceAccount: edge-ingress
    gateway: edge/public
    hosts: [edge.example.com]
"""

SHOP = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: frontend, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
  versions:
    v1: {labels: {version: v1}}
    v2: {labels: {version: v2}}
  calls: [cart]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: cart, namespace: shop}
spec:
  ports: [{name: grpc, port: 7070, protocol: grpc}]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: frontend, namespace: shop}
spec:
  service: frontend
  rules:
  - from: [{ingressGateway: true}]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: cart, namespace: shop}
spec:
  service: cart
  rules:
  - from: [{service: frontend}]
---
apiVersion: meshc/v1
kind: Rollout
metadata: {name: frontend, namespace: shop}
spec:
  service: frontend
  stable: v1
  canary: v2
  split: {v1: 80, v2: 20}
  match:
  - headers: {x-canary: {exact: "yes"}}
    version: v2
"""

FRONTEND = "frontend.shop.svc.cluster.local"
GATEWAY_POD = {"gateway.networking.k8s.io/gateway-name": "shop-gateway"}
OUTSIDE = Request(principal=None, namespace=None, method="GET", path="/", port=80)


def mesh(gateways: str, *, extra: str = "") -> str:
    return (
        "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: shop-mesh, namespace: shop}\n"
        f"spec:\n  defaultAction: deny\n{extra}  ingressGateway:\n{gateways}"
    )


def render(mesh_text: str, shop: str = SHOP) -> list[dict[str, Any]]:
    return [obj for _, obj in render_files({"mesh.yaml": mesh_text, "shop.yaml": shop})]


def by_name(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o
        for o in objects
        if o["kind"] == kind
    }


def admitted(
    objects: list[dict[str, Any]],
    request: Request,
    *,
    labels: Mapping[str, str],
    namespace: str,
) -> bool:
    return decide(objects, request, workload_labels=labels, workload_namespace=namespace)


# --- the gateway's own ALLOW beside the default deny ----------------------------------------


def test_gateway_api_gateway_in_a_default_deny_namespace_accepts_requests_from_outside() -> None:
    objects = render(mesh(GATEWAY_API))
    assert admitted(objects, OUTSIDE, labels=GATEWAY_POD, namespace="shop")


def test_without_its_allow_the_gateway_pod_refuses_everything() -> None:
    """The failure the ALLOW fixes: the namespace's allow-nothing alone gives 403."""
    objects = render(mesh(GATEWAY_API))
    without = [o for o in objects if not o["metadata"]["name"].startswith("meshc-gateway-")]
    assert len(without) == len(objects) - 1
    assert not admitted(without, OUTSIDE, labels=GATEWAY_POD, namespace="shop")


def test_the_allow_nothing_stays_and_still_closes_everything_else() -> None:
    objects = render(mesh(GATEWAY_API))
    policies = by_name(objects, "AuthorizationPolicy")
    assert policies["shop/meshc-allow-nothing"]["spec"] == {}
    other_port = Request(principal=None, namespace=None, method="GET", path="/", port=15000)
    assert not admitted(objects, other_port, labels=GATEWAY_POD, namespace="shop")
    other_pod = {"app": "debug"}
    assert not admitted(objects, OUTSIDE, labels=other_pod, namespace="shop")
    frontend = {"app": "frontend", "version": "v1"}
    direct = Request(principal=None, namespace=None, method="GET", path="/", port=8080)
    assert not admitted(objects, direct, labels=frontend, namespace="shop")


def test_source_ranges_admit_only_clients_inside_them() -> None:
    gateways = GATEWAY_API + "    sourceRanges: [203.0.113.0/24, '2001:db8::/32']\n"
    objects = render(mesh(gateways))

    def from_ip(address: str) -> bool:
        request = Request(None, None, "GET", "/", 80, remote_ip=address)
        return admitted(objects, request, labels=GATEWAY_POD, namespace="shop")

    assert from_ip("203.0.113.7")
    assert from_ip("2001:db8::1")
    assert not from_ip("198.51.100.7")
    assert not admitted(objects, OUTSIDE, labels=GATEWAY_POD, namespace="shop")


def test_classic_gateway_defaults_listen_on_8080_and_8443() -> None:
    objects = render(mesh("  - namespace: shop\n"))
    pod = {"istio": "ingressgateway"}
    for port, expected in ((8080, True), (8443, True), (80, False)):
        request = Request(None, None, "GET", "/", port)
        assert admitted(objects, request, labels=pod, namespace="shop") is expected, port


def test_a_gateway_outside_the_default_deny_gets_no_policy() -> None:
    objects = render(mesh(CLASSIC))
    assert not [o for o in objects if o["metadata"]["namespace"] == "edge"]


def test_root_namespace_services_put_every_gateway_under_default_deny() -> None:
    """A policy in the root namespace applies mesh-wide, so its allow-nothing reaches the
    gateway in `edge` too."""
    root_service = (
        "---\napiVersion: meshc/v1\nkind: Service\n"
        "metadata: {name: probe, namespace: istio-system}\n"
        "spec: {ports: [{name: http, port: 80}]}\n"
    )
    objects = render(mesh(CLASSIC), SHOP + root_service)
    pod = {"istio": "edge-ingress"}
    request = Request(None, None, "GET", "/", 8080)
    assert admitted(objects, request, labels=pod, namespace="edge")
    without = [o for o in objects if not o["metadata"]["name"].startswith("meshc-gateway-")]
    assert not admitted(without, request, labels=pod, namespace="edge")


def test_default_allow_emits_no_gateway_policy() -> None:
    text = mesh(GATEWAY_API).replace("defaultAction: deny", "defaultAction: allow")
    objects = render(text)
    assert not [o for o in objects if o["metadata"]["name"].startswith("meshc-gateway-")]
    assert admitted(objects, OUTSIDE, labels=GATEWAY_POD, namespace="shop")


def test_a_gateway_without_listener_ports_under_default_deny_is_refused() -> None:
    compilation = compile_files(
        {"mesh.yaml": mesh(GATEWAY_API + "    ports: []\n"), "shop.yaml": SHOP}
    )
    assert not compilation.ok
    [finding] = findings(compilation, "MC230")
    assert "shop-gateway" in finding.message
    assert "default deny of namespace shop" in finding.message


# --- who the gateway is, for the services it calls ------------------------------------------


def test_ingress_gateway_true_admits_every_gateway_and_nobody_else() -> None:
    objects = render(mesh(GATEWAY_API + CLASSIC))
    frontend = {"app": "frontend", "version": "v2"}

    def caller(principal: str) -> bool:
        namespace = principal.split("/")[2]
        request = Request(principal, namespace, "GET", "/", 8080)
        return admitted(objects, request, labels=frontend, namespace="shop")

    assert caller("cluster.local/ns/shop/sa/shop-gateway-istio")
    assert caller("cluster.local/ns/edge/sa/edge-ingress")
    assert not caller("cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account")
    assert not caller("cluster.local/ns/shop/sa/cart")


def test_ingress_gateway_by_name_admits_that_gateway_only() -> None:
    shop = SHOP.replace("from: [{ingressGateway: true}]", "from: [{ingressGateway: edge}]")
    objects = render(mesh(GATEWAY_API + CLASSIC), shop)
    frontend = {"app": "frontend", "version": "v1"}
    edge = Request("cluster.local/ns/edge/sa/edge-ingress", "edge", "GET", "/", 8080)
    shop_gw = Request("cluster.local/ns/shop/sa/shop-gateway-istio", "shop", "GET", "/", 8080)
    assert admitted(objects, edge, labels=frontend, namespace="shop")
    assert not admitted(objects, shop_gw, labels=frontend, namespace="shop")
    network = by_name(objects, "NetworkPolicy")["shop/frontend"]
    peers = [peer for rule in network["spec"]["ingress"] for peer in rule["from"]]
    selected = [p.get("podSelector", {}).get("matchLabels") for p in peers]
    assert {"istio": "edge-ingress"} in selected
    assert GATEWAY_POD not in selected


def test_one_gateway_as_a_mapping_renders_as_a_one_item_list() -> None:
    mapping = "    api: gateway-api\n    name: shop-gateway\n    namespace: shop\n"
    mapping += "    hosts: [shop.example.com]\n"
    as_mapping = render(mesh(mapping))
    assert as_mapping == render(mesh(GATEWAY_API))
    assert "meshc-gateway-shop-gateway" in {o["metadata"]["name"] for o in as_mapping}


# --- gateway traffic follows the Rollout's split ---------------------------------------------

APP_GATEWAY: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "shop-gateway", "namespace": "shop"},
    "spec": {
        "gatewayClassName": "istio",
        "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
    },
}
"""The application's own Gateway (meshc names it, never emits it)."""

EDGE = HttpRequest(host="edge.example.com", port=80)
SHOP_HOST = HttpRequest(host="shop.example.com", port=80)


def via_classic(objects: list[dict[str, Any]], request: HttpRequest) -> dict[Any, int]:
    return virtual_service_destinations(objects, request, gateway="edge/public")


def via_gateway_api(objects: list[dict[str, Any]], request: HttpRequest) -> dict[Any, int]:
    return gateway_api_backends([*objects, APP_GATEWAY], "shop", "shop-gateway", request)


def test_classic_gateway_traffic_follows_the_split() -> None:
    objects = render(mesh(CLASSIC))
    assert via_classic(objects, EDGE) == {(FRONTEND, "v1"): 80, (FRONTEND, "v2"): 20}
    canary = HttpRequest(host="edge.example.com", port=80, headers={"x-canary": "yes"})
    assert via_classic(objects, canary) == {(FRONTEND, "v2"): 100}
    [bound] = [o for o in by_name(objects, "VirtualService").values() if "gateways" in o["spec"]]
    ports = {t["destination"]["port"]["number"] for r in bound["spec"]["http"] for t in r["route"]}
    assert ports == {80}


def test_mesh_callers_keep_their_own_route_and_never_see_gateway_hosts() -> None:
    objects = render(mesh(CLASSIC))
    inside = virtual_service_destinations(objects, HttpRequest(host=FRONTEND, port=80))
    assert inside == {(FRONTEND, "v1"): 80, (FRONTEND, "v2"): 20}
    unrouted = {("edge.example.com", None): 100}
    assert virtual_service_destinations(objects, EDGE, gateway="mesh") == unrouted


def test_a_gateway_without_its_gateway_resource_ignores_the_split() -> None:
    """The failure the binding fixes: without `gateway:` no route is bound to the gateway,
    so its requests never meet the split (they go to the plain Service), and lint says so."""
    unbound = CLASSIC.replace("    gateway: edge/public\n", "")
    objects = render(mesh(unbound))
    assert via_classic(objects, EDGE) == {("edge.example.com", None): 100}
    compilation = compile_files({"mesh.yaml": mesh(unbound), "shop.yaml": SHOP})
    [finding] = findings(compilation, "MC232")
    assert "'edge'" in finding.message and "gateway:" in finding.message


def test_no_gateway_route_for_a_service_no_gateway_may_call() -> None:
    shop = SHOP.replace("from: [{ingressGateway: true}]", "from: [{service: cart}]")
    objects = render(mesh(CLASSIC + GATEWAY_API), shop)
    assert via_classic(objects, EDGE) == {("edge.example.com", None): 100}
    assert via_gateway_api(objects, SHOP_HOST) == {}
    assert not by_name(objects, "Service")


def selected_by(service: dict[str, Any], pods: Mapping[str, Mapping[str, str]]) -> set[str]:
    selector = service["spec"]["selector"]
    return {
        pod
        for pod, labels in pods.items()
        if all(labels.get(key) == value for key, value in selector.items())
    }


def test_gateway_api_traffic_follows_the_split_through_per_version_services() -> None:
    objects = render(mesh(GATEWAY_API))
    backends = via_gateway_api(objects, SHOP_HOST)
    assert backends == {("shop", "frontend-v1", 80): 80, ("shop", "frontend-v2", 80): 20}
    pods = {
        "frontend-v1-a": {"app": "frontend", "version": "v1"},
        "frontend-v2-a": {"app": "frontend", "version": "v2"},
        "cart-a": {"app": "cart"},
    }
    services = by_name(objects, "Service")
    for name, pod in (("frontend-v1", "frontend-v1-a"), ("frontend-v2", "frontend-v2-a")):
        service = services[f"shop/{name}"]
        assert selected_by(service, pods) == {pod}
        [port] = service["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (80, 8080)
    assert via_gateway_api(objects, HttpRequest(host="x.example", port=80)) == {}


def test_the_gateway_route_follows_the_rollout_step() -> None:
    stepped = SHOP.replace(
        "  split: {v1: 80, v2: 20}\n", "  steps: [{weight: 10}, {weight: 50}, {weight: 100}]\n"
    )
    files = tree({"mesh.yaml": mesh(GATEWAY_API + CLASSIC), "shop.yaml": stepped})
    compilation = compile_tree(files, now=NOW, rollout_state={"shop/frontend": 1})
    objects = [obj for _, obj in lower(compilation)]
    inside = virtual_service_destinations(objects, HttpRequest(host=FRONTEND, port=80))
    half = {(FRONTEND, "v1"): 50, (FRONTEND, "v2"): 50}
    assert inside == via_classic(objects, EDGE) == half
    api = {("shop", "frontend-v1", 80): 50, ("shop", "frontend-v2", 80): 50}
    assert via_gateway_api(objects, SHOP_HOST) == api


# --- the new objects against the published schemas ---------------------------------------------


def _artifacts() -> Artifacts:
    return render_files({"mesh.yaml": mesh(GATEWAY_API + CLASSIC), "shop.yaml": SHOP})


def test_gateway_objects_validate_against_istio_crds() -> None:
    if not REFERENCE_CRDS.is_file():
        reason = f"Istio's CRD file is not at {REFERENCE_CRDS}; CRD check skipped"
        print(reason)
        pytest.skip(reason)
    artifacts = _artifacts()
    report = check_artifacts(artifacts, load_crd_files([REFERENCE_CRDS]))
    assert report.problems == [], "\n".join(str(p) for p in report.problems)
    kinds = {(key.kind, key.name) for key, _ in artifacts}
    assert ("AuthorizationPolicy", "meshc-gateway-shop-gateway") in kinds
    assert ("VirtualService", "frontend-via-edge") in kinds


def test_per_version_services_validate_against_kubernetes() -> None:
    services = [obj for key, obj in _artifacts() if key.kind == "Service"]
    assert len(services) == 2
    for obj in services:
        kubernetes_validate.validate(obj, "1.30", strict=True)


def test_any_host_binds_the_split_for_every_hostname() -> None:
    objects = render(mesh(CLASSIC.replace("[edge.example.com]", "['*']")))
    anywhere = HttpRequest(host="anything.example.org", port=80)
    assert via_classic(objects, anywhere) == {(FRONTEND, "v1"): 80, (FRONTEND, "v2"): 20}
    routes = render(mesh(GATEWAY_API.replace("[shop.example.com]", "['*']")))
    [route] = by_name(routes, "HTTPRoute").values()
    assert "hostnames" not in route["spec"]
    assert via_gateway_api(routes, anywhere) == {
        ("shop", "frontend-v1", 80): 80,
        ("shop", "frontend-v2", 80): 20,
    }


def test_the_gateway_route_targets_the_port_the_gateway_may_call() -> None:
    two_ports = SHOP.replace(
        "  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]\n",
        "  ports: [{name: http, port: 80, protocol: http}, {name: admin, port: 9000,"
        " protocol: http}, {name: raw, port: 7000, protocol: tcp}]\n",
    )
    admin_only = two_ports.replace(
        "  - from: [{ingressGateway: true}]\n",
        "  - from: [{ingressGateway: true}]\n    to: {ports: [admin]}\n",
    )
    objects = render(mesh(CLASSIC), admin_only)
    bound = by_name(objects, "VirtualService")["shop/frontend-via-edge"]
    ports = {t["destination"]["port"]["number"] for r in bound["spec"]["http"] for t in r["route"]}
    assert ports == {9000}
    tcp_only = two_ports.replace(
        "  - from: [{ingressGateway: true}]\n",
        "  - from: [{ingressGateway: true}]\n    to: {ports: [raw]}\n",
    )
    assert "shop/frontend-via-edge" not in by_name(
        render(mesh(CLASSIC), tcp_only), "VirtualService"
    )
