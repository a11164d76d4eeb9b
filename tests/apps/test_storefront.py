"""The storefront (tests/apps/storefront): a 12-workload shop with its own Kubernetes manifests,
written as meshc intents, rendered, and judged by the Istio/Kubernetes oracle.

What the application does is read from its manifests, never from the intents: the calls are
its ``*_ADDR`` environment variables, the pods and ports its Deployments, StatefulSet and
Services, the gateway the Gateway of class istio that Istio deploys. Every call must pass all
three layers (AuthorizationPolicy, NetworkPolicy both ways, the caller's Sidecar), every other
pair must be stopped by one, and the edges the issue found broken — the gateway's listener
under default deny, the gateway's share of the canary, the client-only load generator, the
external APIs — are checked one by one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from compiler.api import compile_tree, load_tree
from compiler.lower import lower
from tests.apps.application import (
    Application,
    ExternalCall,
    KubeService,
    MeshCall,
    Workload,
    kube_service,
    load_application,
)
from tests.helpers import NOW, run_cli
from tests.lower.support import REFERENCE_CRDS
from tests.oracle.istio import (
    Caller,
    Peer,
    Request,
    connection_allowed,
    decide,
    egress_allowed,
    external_services,
    ingress_allowed,
    proxy_outcome,
)
from tests.oracle.traffic import (
    HttpRequest,
    gateway_api_backends,
    subset_labels,
    virtual_service_destinations,
)

APP = Path(__file__).resolve().parent / "storefront"
POLICIES = APP / "policies"
MANIFESTS = APP / "manifests"

SHOPPER = Peer(None, ip="192.0.2.50")
"""A shopper's browser, outside the cluster."""

PROVIDER_ADDRESSES = {"api.fxrates.example": "203.0.113.10", "api.cardgate.example": "198.51.100.7"}
"""Where DNS places the outside providers the application calls."""

RPCS = {
    "catalog": "/storefront.catalog.v1.CatalogService/ListProducts",
    "cart": "/storefront.cart.v1.CartService/AddItem",
    "recommend": "/storefront.recommend.v1.RecommendService/ForProduct",
    "checkout": "/storefront.checkout.v1.CheckoutService/PlaceOrder",
    "pricing": "/storefront.pricing.v1.PricingService/Quote",
    "ads": "/storefront.ads.v1.AdService/ForContext",
    "payments": "/storefront.payments.v1.PaymentService/Charge",
    "shipping": "/storefront.shipping.v1.ShippingService/Quote",
    "notify": "/storefront.notify.v1.NotifyService/OrderConfirmed",
}
"""One RPC of each gRPC service's API (its proto package), as its callers invoke it."""

WEB_REQUESTS = (("GET", "/"), ("GET", "/product/42"), ("POST", "/cart/add"), ("POST", "/checkout"))
"""What shoppers and the load generator ask the web front end."""

KUBE_DNS = Peer("kube-system", {"k8s-app": "kube-dns"}, ip="10.96.0.10")
ISTIOD = Peer("istio-system", {"app": "istiod"}, ip="10.8.1.2")


@cache
def application() -> Application:
    return load_application(MANIFESTS)


@cache
def rendered() -> tuple[Mapping[str, Any], ...]:
    compilation = compile_tree(load_tree(POLICIES), now=NOW)
    assert compilation.ok, [f"{d.span}: {d.code} {d.message}" for d in compilation.blocking()]
    return tuple(obj for _, obj in lower(compilation))


def of_kind(objects: Iterable[Mapping[str, Any]], *kinds: str) -> list[Mapping[str, Any]]:
    return [obj for obj in objects if obj.get("kind") in kinds]


def peer(workload: Workload) -> Peer:
    return Peer(
        workload.namespace, workload.labels, ip=workload.ip, named_ports=workload.container_ports
    )


def requests_to(service: KubeService, port: int) -> list[tuple[str, str]]:
    """The requests the application sends to a service port: its RPC for gRPC, the site's
    pages for HTTP, none (a bare connection) for TCP."""
    protocol = service.app_protocols[port]
    if protocol == "grpc":
        return [("POST", RPCS[service.name])]
    if protocol == "http":
        return list(WEB_REQUESTS)
    return [("", "")]


def l7_allows(caller: Workload, service: KubeService, port: int, server: Workload) -> bool:
    """Whether the server's proxy admits every request the caller sends on that port (a TCP
    connection carries no method or path, which no HTTP rule matches)."""
    container_port = service.container_port(port, server)
    return all(
        decide(
            of_kind(rendered(), "AuthorizationPolicy"),
            Request(caller.principal, caller.namespace, method, path, container_port),
            workload_labels=server.labels,
            workload_namespace=server.namespace,
        )
        for method, path in requests_to(service, port)
    )


def l4_allows(caller: Workload, service: KubeService, port: int, server: Workload) -> bool:
    return connection_allowed(
        of_kind(rendered(), "NetworkPolicy"),
        peer(caller),
        peer(server),
        service.container_port(port, server),
    )


def proxy(caller: Workload, host: str, port: int) -> str:
    """What the caller's proxy does with a connection: ``known``, ``passthrough`` or
    ``blocked``. Sidecars configure sidecar proxies only; a gateway's proxy knows every
    service."""
    if caller.is_gateway:
        return "known"
    registry = [*of_kind(application().documents, "Service"), *rendered()]
    return proxy_outcome(registry, Caller(caller.namespace, caller.labels), host, port)


def gateway() -> Workload:
    (found,) = [w for w in application().workloads if w.is_gateway]
    return found


def public_site() -> HttpRequest:
    """A shopper's request for the home page, at the Gateway's HTTP listener."""
    (gateway_doc,) = [d for d in application().documents if d["kind"] == "Gateway"]
    (listener,) = gateway_doc["spec"]["listeners"]
    return HttpRequest(host=listener["hostname"], path="/", port=int(listener["port"]))


def gateway_backends() -> dict[tuple[str, str, int | None], int]:
    """Where the routes attached to the gateway send the public site, with weights."""
    return gateway_api_backends(
        [*application().documents, *rendered()],
        gateway().namespace,
        gateway().labels["gateway.networking.k8s.io/gateway-name"],
        public_site(),
    )


def gateway_calls() -> list[MeshCall]:
    """The gateway's calls: each backend Service of its routes (the application's or one
    meshc renders), on the backend's port."""
    services = {
        (doc["metadata"]["namespace"], doc["metadata"]["name"]): kube_service(doc)
        for doc in of_kind([*application().documents, *rendered()], "Service")
    }
    return [
        MeshCall(gateway(), services[(namespace, name)], port or public_site().port)
        for namespace, name, port in gateway_backends()
    ]


def mesh_calls() -> list[MeshCall]:
    return application().calls()[0]


def external_calls() -> list[ExternalCall]:
    return application().calls()[1]


# --- the application itself -------------------------------------------------------------------


def test_the_application_is_realistic() -> None:
    """≥ 10 services: several gRPC ones, an HTTP front end, a TCP store, a client-only load
    generator, outside APIs, a Gateway API gateway in the namespace and two web versions."""
    app = application()
    protocols = [p for s in app.services for p in s.app_protocols.values()]
    assert len(app.services) >= 10
    assert protocols.count("grpc") >= 5 and "http" in protocols and "tcp" in protocols
    callers_without_service = [
        w for w in app.workloads if not w.is_gateway and not any(s.selects(w) for s in app.services)
    ]
    assert [w.name for w in callers_without_service] == ["loadgen"]
    assert {c.host for c in external_calls()} == set(PROVIDER_ADDRESSES)
    assert gateway().namespace == "storefront"
    assert len(app.pods_of(app.service("web"))) == 2
    assert len(mesh_calls()) >= 15


def test_lints_clean_against_its_manifests() -> None:
    """meshc.yaml's ``workloads:`` points lint at the manifests: the selectors, versions,
    identities, target ports and the gateway the intents assume all exist (MC7xx), with only
    the Namespace skipped; ``--workloads`` given explicitly reads the same."""
    for extra in ((), ("--workloads", str(MANIFESTS))):
        result = run_cli("meshc", "lint", str(POLICIES), *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 error(s), 0 warning(s), 0 info" in result.stdout
        assert "skipped Namespace/storefront" in result.stderr


def test_renders_objects_istio_accepts() -> None:
    if not REFERENCE_CRDS.is_file():
        pytest.skip(f"Istio's CRD file is not at {REFERENCE_CRDS} (a fresh clone)")
    result = run_cli("meshc", "render", str(POLICIES), "--crds", str(REFERENCE_CRDS))
    assert result.returncode == 0, result.stderr
    assert "kind: HTTPRoute" in result.stdout and "kind: ServiceEntry" in result.stdout


def test_lint_against_manifests_finds_broken_wiring(tmp_path: Path) -> None:
    """The same check notices the issue's empty subset, a pod running as another identity
    and a missing gateway, so the clean result above means something."""
    broken = tmp_path / "manifests"
    broken.mkdir()
    for path in MANIFESTS.glob("*.yaml"):
        if path.name == "gateway.yaml":
            continue
        text = path.read_text(encoding="utf-8")
        if path.name == "web.yaml":
            text = text.replace("version: v2", "track: v2")
        if path.name == "cart.yaml":
            text = text.replace("serviceAccountName: cart", "serviceAccountName: default")
        (broken / path.name).write_text(text, encoding="utf-8")
    result = run_cli("meshc", "lint", str(POLICIES), "--workloads", str(broken))
    assert result.returncode == 1
    assert "version 'v2' of storefront/web" in result.stdout
    assert "storefront/cart has identity cart" in result.stdout
    assert "ingress gateway storefront-gateway selects pods" in result.stdout


# --- every call the application makes passes every layer -------------------------------------


def test_every_mesh_call_is_allowed_at_l7_l4_and_known_to_the_caller() -> None:
    app = application()
    failures = []
    for call in mesh_calls():
        servers = app.pods_of(call.service)
        assert servers, f"{call.service.name} selects no pods"
        for server in servers:
            layers = {
                "AuthorizationPolicy": l7_allows(call.caller, call.service, call.port, server),
                "NetworkPolicy": l4_allows(call.caller, call.service, call.port, server),
                "Sidecar": proxy(call.caller, call.service.host, call.port) == "known",
            }
            failures += [
                f"{call.caller.name} → {server.name}:{call.port} denied by {layer}"
                for layer, allowed in layers.items()
                if not allowed
            ]
    assert not failures


def test_the_gateway_reaches_the_site_through_every_layer() -> None:
    calls = gateway_calls()
    assert calls, "no route attached to the gateway serves the public site"
    failures = []
    for call in calls:
        servers = [w for w in application().workloads if call.service.selects(w)]
        assert servers, f"the gateway's backend {call.service.name} selects no pods"
        for server in servers:
            if not l7_allows(call.caller, call.service, call.port, server):
                failures.append(f"gateway → {server.name}: AuthorizationPolicy")
            if not l4_allows(call.caller, call.service, call.port, server):
                failures.append(f"gateway → {server.name}: NetworkPolicy")
    assert not failures
    served = {s.name for c in calls for s in application().workloads if c.service.selects(s)}
    assert served == {w.name for w in application().pods_of(application().service("web"))}


def test_every_external_call_is_allowed_and_known() -> None:
    for call in external_calls():
        destination = Peer(None, ip=PROVIDER_ADDRESSES[call.host])
        policies = of_kind(rendered(), "NetworkPolicy")
        assert connection_allowed(policies, peer(call.caller), destination, call.port), call
        assert proxy(call.caller, call.host, call.port) == "known", call


def test_every_pod_reaches_dns_and_istiod() -> None:
    policies = of_kind(rendered(), "NetworkPolicy")
    for workload in application().workloads:
        assert connection_allowed(policies, peer(workload), KUBE_DNS, 53, "UDP"), workload.name
        assert connection_allowed(policies, peer(workload), KUBE_DNS, 53, "TCP"), workload.name
        assert connection_allowed(policies, peer(workload), ISTIOD, 15012), workload.name


# --- nothing else passes --------------------------------------------------------------------------


def undeclared_pairs() -> list[tuple[Workload, KubeService, int, Workload]]:
    """Every (caller, service port, server pod) among the application's workloads whose
    connection (caller, server pod, container port) its wiring never makes."""
    app = application()
    used = {
        (call.caller.name, server.name, call.service.container_port(call.port, server))
        for call in [*mesh_calls(), *gateway_calls()]
        for server in app.workloads
        if call.service.selects(server)
    }
    pairs = []
    for caller, service in itertools.product(app.workloads, app.services):
        for port, server in itertools.product(service.ports, app.pods_of(service)):
            if (caller.name, server.name, service.container_port(port, server)) not in used:
                pairs.append((caller, service, port, server))
    return pairs


def test_every_other_pair_is_denied_by_some_layer() -> None:
    pairs = undeclared_pairs()
    assert len(pairs) > 100
    open_pairs = [
        f"{caller.name} → {server.name}:{port}"
        for caller, service, port, server in pairs
        if l7_allows(caller, service, port, server)
        and l4_allows(caller, service, port, server)
        and proxy(caller, service.host, port) != "blocked"
    ]
    assert not open_pairs


def test_every_other_pair_is_denied_at_l7_and_at_each_end_of_l4() -> None:
    """Zero trust at every layer: neither the AuthorizationPolicies nor either side of the
    NetworkPolicies relies on another to stop a pair the application does not use (the
    issue's widened ingress would hide behind the caller's egress otherwise)."""
    policies = of_kind(rendered(), "NetworkPolicy")
    l7_open, ingress_open, egress_open = [], [], []
    for caller, service, port, server in undeclared_pairs():
        pair = f"{caller.name} → {server.name}:{port}"
        container_port = service.container_port(port, server)
        if l7_allows(caller, service, port, server):
            l7_open.append(pair)
        if ingress_allowed(policies, peer(caller), peer(server), container_port):
            ingress_open.append(pair)
        if egress_allowed(policies, peer(caller), peer(server), container_port):
            egress_open.append(pair)
    assert not l7_open
    assert not ingress_open
    assert not egress_open


def test_a_pod_meshc_does_not_know_is_closed_both_ways() -> None:
    """Network default deny: a debug pod started in the namespace neither reaches nor is
    reached by the application, apart from DNS and istiod."""
    stray = Peer("storefront", {"app": "debug"}, ip="10.8.0.250")
    policies = of_kind(rendered(), "NetworkPolicy")
    for workload in application().workloads:
        for port in workload.container_ports.values():
            assert not connection_allowed(policies, stray, peer(workload), port), workload.name
        assert not connection_allowed(policies, peer(workload), stray, 8080), workload.name
    assert connection_allowed(policies, stray, KUBE_DNS, 53, "UDP")


# --- the gateway ----------------------------------------------------------------------------------


def test_shoppers_reach_the_gateway_listener() -> None:
    """The issue's 403: the namespace's allow-nothing policy also covers the gateway's pods;
    the gateway's own ALLOW and NetworkPolicy open its listener to the outside."""
    gw = gateway()
    listener = public_site().port
    shopper = Request(None, None, "GET", "/", listener)
    policies = of_kind(rendered(), "AuthorizationPolicy")
    assert decide(policies, shopper, workload_labels=gw.labels, workload_namespace=gw.namespace)
    assert connection_allowed(of_kind(rendered(), "NetworkPolicy"), SHOPPER, peer(gw), listener)
    assert not connection_allowed(of_kind(rendered(), "NetworkPolicy"), SHOPPER, peer(gw), 15000)
    without_gateway_allow = [p for p in policies if "gateway" not in p["metadata"]["name"]]
    assert not decide(
        without_gateway_allow, shopper, workload_labels=gw.labels, workload_namespace=gw.namespace
    ), "the allow-nothing policy no longer covers the gateway: the check above proves nothing"


def test_gateway_traffic_follows_the_canary_split_like_mesh_traffic() -> None:
    """The share of requests each web Deployment serves, through the gateway (HTTPRoute
    backends → the Services' pods) and from a mesh caller (VirtualService → DestinationRule
    subsets of the web Service's pods), is the same non-trivial split; every backend and
    subset selects exactly one Deployment (no empty subset)."""
    app = application()
    through_gateway: dict[str, float] = {}
    for call in gateway_calls():
        (pod,) = [w for w in app.workloads if call.service.selects(w)]
        weight = gateway_backends()[(call.service.namespace, call.service.name, call.port)]
        through_gateway[pod.name] = through_gateway.get(pod.name, 0) + weight
    web = app.service("web")
    from_mesh: dict[str, float] = {}
    weights = virtual_service_destinations(
        rendered(), HttpRequest(host=web.host, port=next(iter(web.ports)))
    )
    for (host, subset), weight in weights.items():
        assert host == web.host and subset is not None
        labels = subset_labels(rendered(), host, subset)
        (pod,) = [
            w for w in app.pods_of(web) if all(w.labels.get(k) == v for k, v in labels.items())
        ]
        from_mesh[pod.name] = from_mesh.get(pod.name, 0) + weight
    assert _shares(through_gateway) == _shares(from_mesh) == {"web-v1": 0.9, "web-v2": 0.1}


def _shares(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {name: round(weight / total, 6) for name, weight in weights.items()}


# --- the load generator and the outside ----------------------------------------------------------


def test_the_load_generator_gets_no_host() -> None:
    """A caller only: no DestinationRule, VirtualService, HTTPRoute or Service for it, and
    its Sidecar exists (its egress is scoped)."""
    host = "loadgen.storefront.svc.cluster.local"
    for obj in of_kind(rendered(), "DestinationRule", "VirtualService", "HTTPRoute", "Service"):
        spec = obj.get("spec") or {}
        names = [spec.get("host"), *spec.get("hosts", []), obj["metadata"]["name"]]
        assert not any(name in ("loadgen", host) for name in names), obj["metadata"]["name"]
    loadgen = application().workload("loadgen")
    assert proxy(loadgen, application().service("web").host, 80) == "known"
    assert proxy(loadgen, application().service("cart").host, 7070) == "blocked"


def test_each_external_api_is_reachable_only_from_its_caller() -> None:
    app = application()
    policies = of_kind(rendered(), "NetworkPolicy")
    declared = {(c.caller.name, c.host, c.port) for c in external_calls()}
    for host, address in PROVIDER_ADDRESSES.items():
        destination = Peer(None, ip=address)
        for workload in app.workloads:
            if (workload.name, host, 443) in declared:
                continue
            assert not connection_allowed(policies, peer(workload), destination, 443), (
                workload.name,
                host,
            )
            if not workload.is_gateway:
                assert proxy(workload, host, 443) == "blocked", (workload.name, host)


def test_external_apis_are_declared_to_the_application_namespace_only() -> None:
    declared = {(e.host, tuple(e.ports)) for e in external_services(rendered(), "storefront")}
    assert declared == {(host, (443,)) for host in PROVIDER_ADDRESSES}
    assert not external_services(rendered(), "default")
