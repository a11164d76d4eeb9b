"""The routing oracle against the cases of Istio's VirtualService/DestinationRule pages and the
Gateway API's HTTPRoute specification."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.oracle.istio import (
    HttpRequest,
    gateway_api_backends,
    subset_labels,
    virtual_service_destinations,
)

REVIEWS = "reviews.prod.svc.cluster.local"
TO_REVIEWS = HttpRequest(host=REVIEWS, path="/reviews/1", port=9080)


def virtual_service(
    http: Sequence[Mapping[str, Any]],
    *,
    hosts: Sequence[str] = ("reviews",),
    gateways: Sequence[str] | None = None,
    namespace: str = "prod",
    name: str = "reviews",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": list(hosts), "http": list(http)}
    if gateways is not None:
        spec["gateways"] = list(gateways)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def to(subset: str, weight: int | None = None, host: str = "reviews") -> dict[str, Any]:
    entry: dict[str, Any] = {"destination": {"host": host, "subset": subset}}
    if weight is not None:
        entry["weight"] = weight
    return entry


SPLIT = {"route": [to("v1", 75), to("v2", 25)]}


# --- VirtualService ------------------------------------------------------------------------------


def test_without_virtual_service_the_host_is_unsplit() -> None:
    assert virtual_service_destinations([], TO_REVIEWS) == {(REVIEWS, None): 100}


def test_weighted_split_with_short_names_in_the_vs_namespace() -> None:
    routed = virtual_service_destinations([virtual_service([SPLIT])], TO_REVIEWS)
    assert routed == {(REVIEWS, "v1"): 75, (REVIEWS, "v2"): 25}
    elsewhere = virtual_service([SPLIT], namespace="staging")
    assert virtual_service_destinations([elsewhere], TO_REVIEWS) == {(REVIEWS, None): 100}


def test_single_destination_takes_everything() -> None:
    routed = virtual_service_destinations([virtual_service([{"route": [to("v1")]}])], TO_REVIEWS)
    assert routed == {(REVIEWS, "v1"): 100}


def test_first_matching_route_wins() -> None:
    jason = {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [to("v2")]}
    objects = [virtual_service([jason, {"route": [to("v3")]}])]
    as_jason = HttpRequest(host=REVIEWS, port=9080, headers={"end-user": "jason"})
    assert virtual_service_destinations(objects, as_jason) == {(REVIEWS, "v2"): 100}
    assert virtual_service_destinations(objects, TO_REVIEWS) == {(REVIEWS, "v3"): 100}
    by_prefix = {"match": [{"uri": {"prefix": "/ratings"}}], "route": [to("v2")]}
    assert virtual_service_destinations([virtual_service([by_prefix])], TO_REVIEWS) == {
        (REVIEWS, None): 100
    }


def test_gateways_default_to_mesh() -> None:
    objects = [virtual_service([SPLIT])]
    assert virtual_service_destinations(objects, TO_REVIEWS, gateway="istio-system/public") == {
        (REVIEWS, None): 100
    }


def test_bound_gateways_and_mesh() -> None:
    gateway_only = [virtual_service([SPLIT], gateways=["istio-system/public"])]
    assert virtual_service_destinations(gateway_only, TO_REVIEWS) == {(REVIEWS, None): 100}
    routed = virtual_service_destinations(gateway_only, TO_REVIEWS, gateway="istio-system/public")
    assert routed == {(REVIEWS, "v1"): 75, (REVIEWS, "v2"): 25}
    both = [virtual_service([SPLIT], gateways=["mesh", "public"])]
    assert virtual_service_destinations(both, TO_REVIEWS, gateway="prod/public")[(REVIEWS, "v2")]
    assert virtual_service_destinations(both, TO_REVIEWS)[(REVIEWS, "v2")] == 25


def test_route_level_gateway_match() -> None:
    only_from_gateway = {"match": [{"gateways": ["public"]}], "route": [to("v2")]}
    objects = [virtual_service([only_from_gateway, SPLIT], gateways=["mesh", "public"])]
    assert virtual_service_destinations(objects, TO_REVIEWS, gateway="prod/public") == {
        (REVIEWS, "v2"): 100
    }
    assert virtual_service_destinations(objects, TO_REVIEWS)[(REVIEWS, "v1")] == 75


def test_wildcard_hosts() -> None:
    for pattern in ("*", "*.prod.svc.cluster.local", "*.svc.cluster.local"):
        objects = [virtual_service([SPLIT], hosts=[pattern])]
        assert virtual_service_destinations(objects, TO_REVIEWS)[(REVIEWS, "v2")] == 25
    elsewhere = [virtual_service([SPLIT], hosts=["*.staging.svc.cluster.local"])]
    assert virtual_service_destinations(elsewhere, TO_REVIEWS) == {(REVIEWS, None): 100}


def test_two_mesh_virtual_services_for_a_host_are_ambiguous() -> None:
    with pytest.raises(ValueError):
        virtual_service_destinations(
            [virtual_service([SPLIT], name="a"), virtual_service([SPLIT], name="b")], TO_REVIEWS
        )


def test_subset_labels_come_from_the_host_destination_rule() -> None:
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "prod"},
        "spec": {"host": "reviews", "subsets": [{"name": "v2", "labels": {"version": "v2"}}]},
    }
    assert subset_labels([rule], REVIEWS, "v2") == {"version": "v2"}
    with pytest.raises(ValueError):
        subset_labels([rule], REVIEWS, "v3")
    with pytest.raises(ValueError):
        subset_labels([rule], "ratings.prod.svc.cluster.local", "v2")


# --- Gateway API ---------------------------------------------------------------------------


def gateway(
    *, hostname: str | None = "shop.example.com", allowed: str | None = None
) -> dict[str, Any]:
    listener: dict[str, Any] = {"name": "http", "port": 80, "protocol": "HTTP"}
    if hostname is not None:
        listener["hostname"] = hostname
    if allowed is not None:
        listener["allowedRoutes"] = {"namespaces": {"from": allowed}}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "shop"},
        "spec": {"gatewayClassName": "istio", "listeners": [listener]},
    }


def http_route(
    rules: Sequence[Mapping[str, Any]],
    *,
    namespace: str = "shop",
    name: str = "r",
    hostnames: Sequence[str] | None = None,
    parent: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": [dict(parent or {"name": "gw"})], "rules": list(rules)}
    if hostnames is not None:
        spec["hostnames"] = list(hostnames)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def backends(*refs: tuple[str, int | None]) -> dict[str, Any]:
    entries = []
    for name, weight in refs:
        entry: dict[str, Any] = {"name": name, "port": 80}
        if weight is not None:
            entry["weight"] = weight
        entries.append(entry)
    return {"backendRefs": entries}


HOME = HttpRequest(host="shop.example.com", path="/", port=80)


def routed(*objects: Mapping[str, Any], request: HttpRequest = HOME) -> dict[Any, int]:
    return gateway_api_backends([gateway(), *objects], "shop", "gw", request)


def test_weighted_backends() -> None:
    route = http_route([backends(("web-v1", 90), ("web-v2", 10))])
    assert routed(route) == {("shop", "web-v1", 80): 90, ("shop", "web-v2", 80): 10}


def test_weight_defaults_to_one_and_zero_drops_a_backend() -> None:
    assert routed(http_route([backends(("a", None), ("b", None))])) == {
        ("shop", "a", 80): 1,
        ("shop", "b", 80): 1,
    }
    assert routed(http_route([backends(("a", 0), ("b", 5))])) == {("shop", "b", 80): 5}


def test_parent_ref_defaults_and_other_gateways() -> None:
    explicit = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "namespace": "shop",
        "name": "gw",
    }
    assert routed(http_route([backends(("web", None))], parent=explicit))
    assert not routed(http_route([backends(("web", None))], parent={"name": "other"}))


def test_allowed_routes_default_to_the_gateway_namespace() -> None:
    foreign = http_route(
        [backends(("web", None))], namespace="team", parent={"name": "gw", "namespace": "shop"}
    )
    assert not routed(foreign)
    opened = gateway_api_backends([gateway(allowed="All"), foreign], "shop", "gw", HOME)
    assert opened == {("team", "web", 80): 1}


def test_hostnames_must_intersect_the_listener() -> None:
    route = http_route([backends(("web", None))], hostnames=["shop.example.com"])
    assert routed(route)
    assert not routed(http_route([backends(("web", None))], hostnames=["admin.example.com"]))
    assert not routed(route, request=HttpRequest(host="admin.example.com"))
    wildcard = gateway_api_backends(
        [gateway(hostname="*.example.com"), http_route([backends(("web", None))])],
        "shop",
        "gw",
        HttpRequest(host="api.example.com"),
    )
    assert wildcard


def test_no_listener_on_the_port_refuses() -> None:
    assert not routed(
        http_route([backends(("web", None))]),
        request=HttpRequest(host="shop.example.com", port=443),
    )


def test_path_precedence_exact_then_longest_prefix() -> None:
    rules = [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], **backends(("home", None))},
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/cart"}}],
            **backends(("cart", None)),
        },
        {
            "matches": [{"path": {"type": "Exact", "value": "/cart/checkout"}}],
            **backends(("pay", None)),
        },
    ]
    route = http_route(rules)

    def to_path(path: str) -> set[str]:
        return {name for _, name, _ in routed(route, request=HttpRequest("shop.example.com", path))}

    assert to_path("/") == {"home"}
    assert to_path("/cart") == {"cart"}
    assert to_path("/cart/items") == {"cart"}
    assert to_path("/cartoon") == {"home"}
    assert to_path("/cart/checkout") == {"pay"}


def test_ties_go_to_the_route_first_by_name() -> None:
    first = http_route([backends(("a", None))], name="a-route")
    second = http_route([backends(("b", None))], name="b-route")
    assert routed(second, first) == {("shop", "a", 80): 1}


def test_missing_gateway_raises() -> None:
    with pytest.raises(ValueError):
        gateway_api_backends([], "shop", "gw", HOME)
