"""Access semantics of the Envoy backend's RBAC: the rules each inbound port carries decide
requests as the AccessPolicy says (checked with an evaluator of Envoy's RBAC semantics,
and against the effective model's `decide_call` on bookinfo)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from compiler.lower.envoy.rbac import RBAC_ALLOW, RBAC_DENY, RBAC_LOG
from compiler.lower.envoy.snapshot import Snapshot
from compiler.model.graph import decide_call
from compiler.model.mesh import ServiceKey
from tests.helpers import tree
from tests.lower.envoy.rbac_eval import Request, decide_http, decide_tcp, http_filter_chain
from tests.lower.envoy.support import compile_placed, snapshots_of
from tests.lower.support import BOOKINFO

TD = "spiffe://cluster.local"


def spiffe(namespace: str, account: str) -> str:
    return f"{TD}/ns/{namespace}/sa/{account}"


def server(snapshots: Mapping[str, Snapshot], service: str) -> Snapshot:
    return next(s for node, s in sorted(snapshots.items()) if node.startswith(f"{service}."))


def placed(files: dict[str, str]) -> Mapping[str, Snapshot]:
    return snapshots_of(compile_placed(tree(files)))


def test_listener_carries_log_deny_allow_in_order_with_no_rules_of_its_own() -> None:
    snapshots = snapshots_of(compile_placed(BOOKINFO))
    chain = http_filter_chain(server(snapshots, "reviews"), 9080)
    assert [name for name, _ in chain] == [RBAC_LOG, RBAC_DENY, RBAC_ALLOW]
    for _, config in chain:
        assert "policies" not in config["rules"], "the rules belong on the route (RDS)"


def _samples(paths: list[str]) -> list[str]:
    out = ["/", "/other"]
    for path in paths:
        out.append(path.replace("*", "x") if path != "*" else "/x")
        out.append(path.rstrip("*"))
    return out


def test_bookinfo_agrees_with_the_effective_model() -> None:
    """For every pair of services, some request of the rules' methods and paths is allowed
    exactly when `decide_call` allows the call."""
    compilation = compile_placed(BOOKINFO)
    snapshots = snapshots_of(compilation)
    model = compilation.model
    checked = 0
    for server_key, server_view in model.services.items():
        snapshot = server(snapshots, server_key.name)
        paths = [
            p
            for policy in server_view.policies
            for r in policy.model.spec.rules
            for p in r.to.paths
        ]
        for client_key, client_view in model.services.items():
            expected = decide_call(client_view, server_view, model).allowed
            allowed = any(
                decide_http(snapshot, 9080, Request(client_view.spiffe_id, method, path)).allowed
                for method in ("GET", "POST", "DELETE")
                for path in _samples(paths)
            )
            assert allowed == expected, (client_key, server_key)
            checked += 1
    assert checked == len(model.services) ** 2


def test_bookinfo_paths_methods_and_callers() -> None:
    snapshots = snapshots_of(compile_placed(BOOKINFO))
    reviews = server(snapshots, "reviews")
    productpage = spiffe("bookinfo", "bookinfo-productpage")
    assert decide_http(reviews, 9080, Request(productpage, "GET", "/reviews/0")).allowed
    assert decide_http(reviews, 9080, Request(productpage, "GET", "/reviews/0?x=1")).allowed
    # `/reviews/*` does not match `/reviews`, and only GET is allowed
    assert not decide_http(reviews, 9080, Request(productpage, "GET", "/reviews")).allowed
    assert not decide_http(reviews, 9080, Request(productpage, "POST", "/reviews/0")).allowed
    ratings = spiffe("bookinfo", "bookinfo-ratings")
    denied = decide_http(reviews, 9080, Request(ratings, "GET", "/reviews/0"))
    assert (denied.allowed, denied.policy) == (False, "none")


DENY_BEFORE_ALLOW = {
    "svc.yaml": """
        apiVersion: meshc/v1
        kind: Service
        metadata: {name: api, namespace: app}
        spec:
          ports:
          - {name: http, port: 8080, protocol: http}
          - {name: admin, port: 9000, targetPort: 9001, protocol: http}
          - {name: db, port: 5432, protocol: tcp}
        ---
        apiVersion: meshc/v1
        kind: Service
        metadata: {name: web, namespace: app}
        spec:
          ports: [{name: http, port: 80, protocol: http}]
          calls: [api]
        ---
        apiVersion: meshc/v1
        kind: Service
        metadata: {name: job, namespace: batch}
        spec:
          calls: [app/api]
        ---
        apiVersion: meshc/v1
        kind: AccessPolicy
        metadata: {name: api, namespace: app}
        spec:
          service: api
          rules:
          - from: [{service: web}]
          - from: [{service: web}]
            to: {methods: [DELETE]}
            action: deny
          - from: [{namespace: batch}]
            to: {ports: [admin], paths: ["*.json"]}
            headers: {x-token: ["t-*"]}
            log: true
          - from: [{namespace: batch}]
            to: {ports: [db]}
        """,
}


def test_deny_is_decided_before_allow_and_names_its_policy() -> None:
    api = server(placed(DENY_BEFORE_ALLOW), "api")
    web = spiffe("app", "web")
    assert decide_http(api, 8080, Request(web, "GET", "/anything")).allowed
    denied = decide_http(api, 8080, Request(web, "DELETE", "/anything"))
    assert (denied.allowed, denied.policy) == (False, "app/api/rule-2")


def test_ports_namespaces_suffix_paths_and_headers() -> None:
    api = server(placed(DENY_BEFORE_ALLOW), "api")
    job = spiffe("batch", "job")
    ok = Request(job, "POST", "/x/report.json", {"x-token": "t-1"})
    assert decide_http(api, 9000, ok).allowed
    # the rule names the admin port only: not on 8080
    assert not decide_http(api, 8080, ok).allowed
    assert not decide_http(
        api, 9000, Request(job, "POST", "/x/report.xml", {"x-token": "t-1"})
    ).allowed
    assert not decide_http(
        api, 9000, Request(job, "POST", "/x/report.json", {"x-token": "u"})
    ).allowed
    assert not decide_http(api, 9000, Request(job, "POST", "/x/report.json")).allowed


def test_tcp_ports_deny_more_on_http_conditions() -> None:
    """A deny naming methods cannot tell TCP connections apart: on a TCP port it denies
    the caller outright (as Istio does); a rule for the port without HTTP conditions
    allows."""
    api = server(placed(DENY_BEFORE_ALLOW), "api")
    assert decide_tcp(api, 5432, spiffe("batch", "job"))
    assert not decide_tcp(api, 5432, spiffe("app", "web"))
    assert not decide_tcp(api, 5432, spiffe("elsewhere", "x"))


SHADOW = {
    "svc.yaml": """
        apiVersion: meshc/v1
        kind: Service
        metadata: {name: cart, namespace: shop}
        spec:
          ports: [{name: http, port: 8080, protocol: http}]
        ---
        apiVersion: meshc/v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec:
          ports: [{name: http, port: 80, protocol: http}]
          calls: [cart]
        ---
        apiVersion: meshc/v1
        kind: AccessPolicy
        metadata: {name: cart, namespace: shop}
        spec:
          service: cart
          mode: shadow
          rules:
          - from: [{service: web}]
            to: {methods: [GET]}
        """,
}


def test_shadow_mode_allows_every_identity_and_counts_what_it_would_deny() -> None:
    cart = server(placed(SHADOW), "cart")
    stranger = Request(spiffe("elsewhere", "x"), "GET", "/")
    decision = decide_http(cart, 8080, stranger)
    assert decision.allowed and not decision.shadow_allowed
    listed = decide_http(cart, 8080, Request(spiffe("shop", "web"), "GET", "/"))
    assert listed.allowed and listed.shadow_allowed
    post = decide_http(cart, 8080, Request(spiffe("shop", "web"), "POST", "/"))
    assert post.allowed and not post.shadow_allowed


NO_POLICY = {
    "svc.yaml": """
        apiVersion: meshc/v1
        kind: Service
        metadata: {name: open, namespace: shop}
        spec:
          ports: [{name: http, port: 8080, protocol: http}]
        """,
}


@pytest.mark.parametrize(("action", "allowed"), [("deny", False), ("allow", True)])
def test_a_service_without_policy_follows_the_mesh_default(action: str, allowed: bool) -> None:
    files = dict(NO_POLICY)
    files["mesh.yaml"] = (
        "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\n"
        f"spec: {{defaultAction: {action}}}\n"
    )
    snapshot = server(placed(files), "open")
    assert decide_http(snapshot, 8080, Request(spiffe("any", "one"))).allowed is allowed


def test_model_and_envoy_agree_on_the_deny_fixture() -> None:
    compilation = compile_placed(tree(DENY_BEFORE_ALLOW))
    model = compilation.model
    api = model.services[ServiceKey("app", "api")]
    for client in model.services.values():
        expected = decide_call(client, api, model).allowed
        snapshot = server(snapshots_of(compilation), "api")
        got = any(
            decide_http(snapshot, port, Request(client.spiffe_id, m, p, {"x-token": "t-1"})).allowed
            for port in (8080, 9000)
            for m in ("GET", "POST", "DELETE")
            for p in ("/", "/a.json")
        ) or decide_tcp(snapshot, 5432, client.spiffe_id)
        assert got == expected, client.key
