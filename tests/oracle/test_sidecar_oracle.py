"""The registry, ServiceEntry and Sidecar egress oracle against the cases of Istio's Sidecar and
ServiceEntry reference pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.oracle.istio import Caller, external_services, proxy_outcome, registry, visible_to

WEB = Caller("shop", {"app": "web"})
WORKER = Caller("shop", {"app": "worker"})
BILLING = Caller("billing", {"app": "ledger"})
CART = "cart.shop.svc.cluster.local"
LEDGER = "ledger.billing.svc.cluster.local"
API = "api.payments.example"


def service(name: str, namespace: str, *ports: int, export_to: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if export_to is not None:
        metadata["annotations"] = {"networking.istio.io/exportTo": export_to}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {"ports": [{"name": f"p{p}", "port": p} for p in ports]},
    }


def service_entry(
    hosts: Sequence[str],
    *,
    namespace: str = "shop",
    port: int = 443,
    export_to: Sequence[str] | None = None,
    location: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "hosts": list(hosts),
        "ports": [{"number": port, "name": "https", "protocol": "TLS"}],
        "resolution": "DNS",
    }
    if export_to is not None:
        spec["exportTo"] = list(export_to)
    if location is not None:
        spec["location"] = location
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "se", "namespace": namespace},
        "spec": spec,
    }


def sidecar(
    *hosts: str,
    namespace: str = "shop",
    selector: Mapping[str, str] | None = None,
    mode: str | None = None,
    name: str = "sc",
    port: int | None = None,
) -> dict[str, Any]:
    listener: dict[str, Any] = {"hosts": list(hosts)}
    if port is not None:
        listener["port"] = {"number": port, "protocol": "HTTP", "name": "p"}
    spec: dict[str, Any] = {"egress": [listener]}
    if selector is not None:
        spec["workloadSelector"] = {"labels": dict(selector)}
    if mode is not None:
        spec["outboundTrafficPolicy"] = {"mode": mode}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


SERVICES = [service("cart", "shop", 7070), service("ledger", "billing", 8080)]


def outcome(
    *objects: Mapping[str, Any], caller: Caller = WEB, host: str = CART, port: int = 7070, **kw: Any
) -> str:
    return proxy_outcome([*SERVICES, *objects], caller, host, port, **kw)


# --- the registry and exportTo ----------------------------------------------------------------


def test_registry_holds_kubernetes_services_and_service_entry_hosts() -> None:
    entries = registry([*SERVICES, service_entry([API, "*.cdn.example"])])
    assert {(e.host, e.namespace, e.kind) for e in entries} == {
        (CART, "shop", "Service"),
        (LEDGER, "billing", "Service"),
        (API, "shop", "ServiceEntry"),
        ("*.cdn.example", "shop", "ServiceEntry"),
    }
    assert registry([service("cart", "shop", 1)], cluster_domain="corp.local")[0].host == (
        "cart.shop.svc.corp.local"
    )


@pytest.mark.parametrize(
    ("export_to", "visible_in_shop", "visible_in_billing"),
    [
        (None, True, True),
        (["*"], True, True),
        (["."], True, False),
        (["~"], False, False),
        (["billing"], False, True),
        ([".", "billing"], True, True),
    ],
)
def test_export_to(
    export_to: list[str] | None, visible_in_shop: bool, visible_in_billing: bool
) -> None:
    (entry,) = registry([service_entry([API], export_to=export_to)])
    assert visible_to(entry, "shop") is visible_in_shop
    assert visible_to(entry, "billing") is visible_in_billing


def test_service_export_annotation() -> None:
    (entry,) = registry([service("cart", "shop", 7070, export_to=".")])
    assert visible_to(entry, "shop")
    assert not visible_to(entry, "billing")


def test_external_services_are_mesh_external_entries_exported_to_the_namespace() -> None:
    objects = [
        *SERVICES,
        service_entry([API]),
        service_entry(["vm.internal"], location="MESH_INTERNAL"),
        service_entry(["private.example"], namespace="billing", export_to=["."]),
    ]
    assert [e.host for e in external_services(objects, "shop")] == [API]
    assert sorted(e.host for e in external_services(objects, "billing")) == [API, "private.example"]
    assert external_services(objects, "shop")[0].ports == {443: "TLS"}


# --- which Sidecar applies ------------------------------------------------------------------------


def test_no_sidecar_knows_every_visible_service() -> None:
    assert outcome() == "known"
    assert outcome(host=LEDGER, port=8080) == "known"
    assert outcome(host=LEDGER, port=9999) == "passthrough"
    assert outcome(host="unknown.example", port=443) == "passthrough"


def test_namespace_sidecar_limits_the_hosts() -> None:
    only_shop = sidecar("./*")
    assert outcome(only_shop) == "known"
    assert outcome(only_shop, host=LEDGER, port=8080) == "passthrough"
    assert outcome(only_shop, caller=BILLING, host=LEDGER, port=8080) == "known"


def test_workload_selector_takes_precedence_over_the_namespace_sidecar() -> None:
    namespace_wide = sidecar("./*", name="default")
    for_web = sidecar("billing/*", selector={"app": "web"}, name="web")
    assert outcome(namespace_wide, for_web) == "passthrough"
    assert outcome(namespace_wide, for_web, host=LEDGER, port=8080) == "known"
    assert outcome(namespace_wide, for_web, caller=WORKER) == "known"
    assert outcome(namespace_wide, for_web, caller=WORKER, host=LEDGER, port=8080) == "passthrough"


def test_root_namespace_sidecar_is_the_mesh_default() -> None:
    mesh_default = sidecar("istio-system/*", namespace="istio-system", name="default")
    assert outcome(mesh_default) == "passthrough"
    assert outcome(mesh_default, sidecar("./*")) == "known"
    assert outcome(mesh_default, root_namespace="other-root") == "known"


def test_sidecar_of_another_namespace_does_not_apply() -> None:
    assert outcome(sidecar("~/*", namespace="billing")) == "known"


def test_ambiguous_sidecars_raise() -> None:
    with pytest.raises(ValueError):
        outcome(sidecar("./*", name="a"), sidecar("./*", name="b"))
    with pytest.raises(ValueError):
        outcome(
            sidecar("./*", selector={"app": "web"}, name="a"),
            sidecar("./*", selector={"app": "web"}, name="b"),
        )


# --- egress host forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "cart", "ledger"),
    [
        ("shop/cart.shop.svc.cluster.local", True, False),
        ("*/cart.shop.svc.cluster.local", True, False),
        ("./cart.shop.svc.cluster.local", True, False),
        ("billing/cart.shop.svc.cluster.local", False, False),
        ("shop/*", True, False),
        ("billing/*", False, True),
        ("*/*", True, True),
        ("./*", True, False),
        ("~/*", False, False),
        ("*/*.svc.cluster.local", True, True),
        ("*/*.billing.svc.cluster.local", False, True),
        ("shop/cart", False, False),
    ],
)
def test_egress_host_forms(pattern: str, cart: bool, ledger: bool) -> None:
    scoped = sidecar(pattern, selector={"app": "web"})
    assert (outcome(scoped) == "known") is cart
    assert (outcome(scoped, host=LEDGER, port=8080) == "known") is ledger


def test_service_entry_hosts_are_imported_by_their_declaring_namespace() -> None:
    entry = service_entry([API], namespace="egress")
    assert outcome(entry, sidecar("./*"), host=API, port=443) == "passthrough"
    assert outcome(entry, sidecar("egress/*"), host=API, port=443) == "known"
    assert outcome(entry, sidecar(f"egress/{API}"), host=API, port=443) == "known"
    assert outcome(entry, sidecar(f"*/{API}"), host=API, port=443) == "known"


def test_a_host_not_exported_to_the_caller_cannot_be_imported() -> None:
    hidden = service_entry([API], namespace="egress", export_to=["."])
    assert (
        outcome(hidden, sidecar("egress/*"), host=API, port=443, mesh_outbound="REGISTRY_ONLY")
        == "blocked"
    )


def test_wildcard_service_entry_hosts() -> None:
    entry = service_entry(["*.cdn.example"])
    assert outcome(entry, sidecar("./*.cdn.example"), host="img.cdn.example", port=443) == "known"
    assert outcome(entry, sidecar("./*.cdn.example"), host="cdn.example", port=443) == "passthrough"
    assert (
        outcome(entry, sidecar("./img.cdn.example"), host="img.cdn.example", port=443)
        == "passthrough"
    )


def test_listener_port_restricts_the_hosts() -> None:
    on_7070 = sidecar("shop/*", port=7070)
    assert outcome(on_7070) == "known"
    two_ports = service("cart", "shop", 7070, 9090)
    assert proxy_outcome([two_ports, on_7070], WEB, CART, 9090) == "passthrough"


# --- outbound traffic policy ---------------------------------------------------------------------


def test_registry_only_blocks_unknown_hosts() -> None:
    assert outcome(host="unknown.example", port=443, mesh_outbound="REGISTRY_ONLY") == "blocked"
    assert outcome(host="unknown.example", port=443) == "passthrough"
    assert outcome(mesh_outbound="REGISTRY_ONLY") == "known"
    entry = service_entry([API])
    assert outcome(entry, host=API, port=443, mesh_outbound="REGISTRY_ONLY") == "known"


def test_sidecar_outbound_policy_overrides_the_mesh() -> None:
    strict = sidecar("./*", mode="REGISTRY_ONLY")
    assert outcome(strict, host=LEDGER, port=8080) == "blocked"
    loose = sidecar("./*", mode="ALLOW_ANY")
    assert outcome(loose, host=LEDGER, port=8080, mesh_outbound="REGISTRY_ONLY") == "passthrough"


def test_a_registered_host_hidden_by_the_sidecar_is_blocked_under_registry_only() -> None:
    """The issue's failure: a Sidecar egress without the application's ServiceEntry hides it."""
    objects = (service_entry([API]), sidecar("./cart.shop.svc.cluster.local", mode="REGISTRY_ONLY"))
    assert outcome(*objects, host=API, port=443) == "blocked"


@pytest.mark.parametrize(
    "bad",
    [
        sidecar("cart.shop.svc.cluster.local"),
        sidecar("./*", mode="DENY_ALL"),
        {
            "apiVersion": "networking.istio.io/v1alpha9",
            "kind": "Sidecar",
            "metadata": {"name": "x", "namespace": "shop"},
        },
        service_entry([API], location="SOMEWHERE"),
        service_entry([], namespace="shop"),
    ],
)
def test_malformed_objects_raise(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        outcome(bad)
