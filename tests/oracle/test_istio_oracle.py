"""The Istio oracle against tiny examples of each documented AuthorizationPolicy rule, so the
property tests that trust it rest on checked ground."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from tests.oracle.istio import Request, decide

WEB = "cluster.local/ns/shop/sa/web"
LABELS = {"app": "cart", "tier": "backend"}
GET = Request(principal=WEB, namespace="shop", method="GET", path="/items", port=8080, headers={})
PLAIN = replace(GET, principal=None, namespace=None)


def policy(
    spec: Mapping[str, Any],
    *,
    namespace: str = "shop",
    name: str = "p",
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An AuthorizationPolicy shaped as meshc renders it."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata,
        "spec": dict(spec),
    }


def allowed(*policies: Mapping[str, Any], request: Request = GET) -> bool:
    return decide(policies, request, workload_labels=LABELS, workload_namespace="shop")


def allow(*rules: Mapping[str, Any]) -> dict[str, Any]:
    return policy({"action": "ALLOW", "rules": list(rules)})


def deny(*rules: Mapping[str, Any]) -> dict[str, Any]:
    return policy({"action": "DENY", "rules": list(rules)})


def source(**fields: list[str]) -> dict[str, Any]:
    return {"from": [{"source": fields}]}


def operation(**fields: list[str]) -> dict[str, Any]:
    return {"to": [{"operation": fields}]}


def header(name: str, values: list[str], *, negative: bool = False) -> dict[str, Any]:
    return {
        "when": [
            {"key": f"request.headers[{name}]", ("notValues" if negative else "values"): values}
        ]
    }


# --- the decision order ---------------------------------------------------------------------


def test_no_policy_allows() -> None:
    assert allowed()


def test_no_allow_policy_allows_what_no_deny_matches() -> None:
    assert allowed(deny(operation(paths=["/admin"])))
    assert not allowed(deny(operation(paths=["/admin"])), request=replace(GET, path="/admin"))


def test_deny_wins_over_allow() -> None:
    assert not allowed(allow({}), deny({}))


def test_allow_nothing_denies_everything() -> None:
    assert not allowed(policy({}))
    assert not allowed(policy({"action": "ALLOW"}))
    assert not allowed(policy({}), request=PLAIN)


def test_allow_all_rule_allows_everything() -> None:
    assert allowed(allow({}))
    assert allowed(allow({}), request=PLAIN)


def test_deny_without_rules_matches_nothing() -> None:
    assert allowed(policy({"action": "DENY"}))


def test_allow_policies_are_ored() -> None:
    other = allow(source(principals=["cluster.local/ns/shop/sa/other"]))
    assert not allowed(other)
    assert allowed(other, allow(source(principals=[WEB])))


def test_action_defaults_to_allow() -> None:
    assert allowed(policy({"rules": [source(principals=[WEB])]}))
    assert not allowed(policy({"rules": [source(principals=["x"])]}))


def test_dry_run_policies_are_ignored() -> None:
    dry = {"istio.io/dry-run": "true"}
    assert allowed(policy({"action": "DENY", "rules": [{}]}, annotations=dry))
    assert allowed(policy({}, annotations=dry))
    assert not allowed(policy({}, annotations={"istio.io/dry-run": "false"}))


def test_audit_and_custom_do_not_decide() -> None:
    assert allowed(policy({"action": "AUDIT", "rules": [{}]}))
    custom = {"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{}]}
    assert allowed(policy(custom))
    assert not allowed(policy(custom), policy({}))


def test_other_kinds_are_skipped() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cart"}}
    assert allowed(service)


# --- which policies apply -------------------------------------------------------------------


def test_selector_must_be_a_subset_of_the_workload_labels() -> None:
    def allow_nothing(match_labels: dict[str, str]) -> dict[str, Any]:
        return policy({"selector": {"matchLabels": match_labels}})

    assert not allowed(allow_nothing({"app": "cart"}))
    assert not allowed(allow_nothing({"app": "cart", "tier": "backend"}))
    assert allowed(allow_nothing({"app": "cart", "tier": "frontend"}))
    assert allowed(allow_nothing({"app": "cart", "version": "v1"}))


def test_policy_of_another_namespace_does_not_apply() -> None:
    assert allowed(policy({}, namespace="billing"))


def test_root_namespace_policy_applies_mesh_wide() -> None:
    assert not allowed(policy({}, namespace="istio-system"))
    selected = {"selector": {"matchLabels": {"app": "cart"}}}
    assert not allowed(policy(selected, namespace="istio-system"))
    other = {"selector": {"matchLabels": {"app": "billing"}}}
    assert allowed(policy(other, namespace="istio-system"))


def test_root_namespace_is_configurable() -> None:
    mesh_wide = policy({}, namespace="mesh-root")
    assert decide([mesh_wide], GET, workload_labels=LABELS, workload_namespace="shop")
    assert not decide(
        [mesh_wide],
        GET,
        workload_labels=LABELS,
        workload_namespace="shop",
        root_namespace="mesh-root",
    )


# --- sources ----------------------------------------------------------------------------------


def test_principal_exact_prefix_suffix_presence() -> None:
    assert allowed(allow(source(principals=[WEB])))
    assert not allowed(allow(source(principals=["cluster.local/ns/shop/sa/we"])))
    assert allowed(allow(source(principals=["cluster.local/ns/shop/*"])))
    assert not allowed(allow(source(principals=["cluster.local/ns/shopping/*"])))
    assert allowed(allow(source(principals=["*/sa/web"])))
    assert not allowed(allow(source(principals=["*/sa/api"])))
    assert allowed(allow(source(principals=["*"])))


def test_prefix_and_suffix_match_the_bare_affix() -> None:
    assert allowed(allow(source(principals=[WEB + "*"])))
    assert allowed(allow(source(principals=["*" + WEB])))


def test_plaintext_caller_and_principal_presence() -> None:
    assert not allowed(allow(source(principals=["*"])), request=PLAIN)
    assert not allowed(allow(source(namespaces=["*"])), request=PLAIN)
    assert allowed(deny(source(notPrincipals=["*"])))
    assert not allowed(deny(source(notPrincipals=["*"])), request=PLAIN)
    assert allowed(deny(source(notPrincipals=["*"])), allow({}))


def test_plaintext_caller_matches_negative_source_fields() -> None:
    """ISTIO-SECURITY-2021-004: mTLS-only fields compare against an empty value."""
    assert allowed(allow(source(notNamespaces=["shop"])), request=PLAIN)
    assert allowed(allow(source(notPrincipals=[WEB])), request=PLAIN)
    assert not allowed(allow(source(notNamespaces=["shop"])))


def test_plaintext_namespace_is_ignored_without_a_principal() -> None:
    assert not allowed(allow(source(namespaces=["shop"])), request=replace(PLAIN, namespace="shop"))


def test_namespaces_and_not_principals() -> None:
    assert allowed(allow(source(namespaces=["shop"])))
    assert not allowed(allow(source(namespaces=["billing"])))
    assert allowed(allow(source(namespaces=["sh*"])))
    assert not allowed(allow(source(notPrincipals=[WEB])))
    assert allowed(allow(source(notPrincipals=["cluster.local/ns/shop/sa/api"])))


def test_request_principals_are_never_set() -> None:
    assert not allowed(allow(source(requestPrincipals=["*"])))
    assert allowed(allow(source(notRequestPrincipals=["*"])))


def test_sources_are_ored_and_fields_anded() -> None:
    two_sources = {
        "from": [
            {"source": {"principals": ["cluster.local/ns/shop/sa/api"]}},
            {"source": {"namespaces": ["shop"]}},
        ]
    }
    assert allowed(allow(two_sources))
    assert not allowed(allow(source(principals=[WEB], namespaces=["billing"])))
    assert allowed(allow(source(principals=[WEB], namespaces=["shop"])))


# --- operations -------------------------------------------------------------------------------


def test_paths_exact_prefix_suffix_presence() -> None:
    items = replace(GET, path="/items")
    assert allowed(allow(operation(paths=["/items"])), request=items)
    assert not allowed(allow(operation(paths=["/items/"])), request=items)
    assert allowed(allow(operation(paths=["/it*"])), request=items)
    assert allowed(allow(operation(paths=["*ems"])), request=items)
    assert allowed(allow(operation(paths=["*"])), request=items)


def test_path_prefix_with_slash_does_not_match_the_bare_directory() -> None:
    rule = allow(operation(paths=["/a/*"]))
    assert not allowed(rule, request=replace(GET, path="/a"))
    assert allowed(rule, request=replace(GET, path="/a/"))
    assert allowed(rule, request=replace(GET, path="/a/b/c"))
    assert not allowed(rule, request=replace(GET, path="/ab"))


def test_not_paths() -> None:
    rule = allow(operation(notPaths=["/admin*"]))
    assert allowed(rule, request=replace(GET, path="/items"))
    assert not allowed(rule, request=replace(GET, path="/admin/users"))


def test_methods_and_not_methods() -> None:
    assert allowed(allow(operation(methods=["GET", "HEAD"])))
    assert not allowed(allow(operation(methods=["POST"])))
    assert not allowed(allow(operation(methods=["get"])))
    assert not allowed(allow(operation(notMethods=["GET"])))
    assert allowed(allow(operation(notMethods=["DELETE"])))


def test_ports_and_not_ports_are_exact() -> None:
    assert allowed(allow(operation(ports=["8080"])))
    assert not allowed(allow(operation(ports=["9090"])))
    assert not allowed(allow(operation(notPorts=["8080"])))
    assert allowed(allow(operation(notPorts=["9090"])))


def test_operations_are_ored_and_fields_anded() -> None:
    two_operations = {
        "to": [
            {"operation": {"methods": ["POST"]}},
            {"operation": {"paths": ["/items"]}},
        ]
    }
    assert allowed(allow(two_operations))
    assert not allowed(allow(operation(methods=["GET"], paths=["/orders"])))
    assert allowed(allow(operation(methods=["GET"], paths=["/orders", "/items"])))


def test_from_to_and_when_are_anded_in_a_rule() -> None:
    rule = {**source(principals=[WEB]), **operation(methods=["POST"])}
    assert not allowed(allow(rule))
    assert allowed(allow(rule), request=replace(GET, method="POST"))


def test_empty_lists_place_no_constraint() -> None:
    assert allowed(allow({"from": [], "to": [], "when": []}))
    assert allowed(allow(source(principals=[])))


# --- conditions -------------------------------------------------------------------------------


def test_header_condition() -> None:
    tagged = replace(GET, headers={"x-version": "v1"})
    assert not allowed(allow(header("x-version", ["v1", "v2"])))
    assert allowed(allow(header("x-version", ["v1", "v2"])), request=tagged)
    assert allowed(allow(header("X-Version", ["v*"])), request=tagged)
    assert allowed(allow(header("x-version", ["*"])), request=tagged)
    assert not allowed(
        allow(header("x-version", ["*"])), request=replace(GET, headers={"x-version": ""})
    )
    assert not allowed(allow(header("x-version", ["v2"])), request=tagged)


def test_header_not_values() -> None:
    tagged = replace(GET, headers={"x-version": "v1"})
    assert not allowed(allow(header("x-version", ["v1"], negative=True)), request=tagged)
    assert allowed(allow(header("x-version", ["v2"], negative=True)), request=tagged)
    assert allowed(allow(header("x-version", ["v1"], negative=True)))


def test_conditions_are_anded() -> None:
    rule = {"when": header("a", ["1"])["when"] + header("b", ["2"])["when"]}
    assert not allowed(allow(rule), request=replace(GET, headers={"a": "1"}))
    assert allowed(allow(rule), request=replace(GET, headers={"a": "1", "b": "2"}))


# --- what the oracle refuses to guess ---------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        source(ipBlocks=["10.0.0.0/8"]),
        source(notIpBlocks=["10.0.0.0/8"]),
        operation(hosts=["cart.shop"]),
        operation(paths=["/items/{*}"]),
        operation(paths=["/a/*/b"]),
        {"when": [{"key": "source.ip", "values": ["10.0.0.1"]}]},
        {"when": [{"key": "request.auth.claims[iss]", "values": ["x"]}]},
    ],
)
def test_unmodelled_fields_raise(rule: Mapping[str, Any]) -> None:
    with pytest.raises(NotImplementedError):
        allowed(allow(rule))


def test_unmodelled_field_raises_even_after_a_match() -> None:
    with pytest.raises(NotImplementedError):
        allowed(allow({}, operation(hosts=["cart.shop"])))


def test_target_ref_raises() -> None:
    with pytest.raises(NotImplementedError):
        allowed(policy({"targetRefs": [{"kind": "Gateway", "name": "gw"}]}))


@pytest.mark.parametrize(
    "bad",
    [
        policy({"action": "LOG"}),
        policy({"rules": [{"form": []}]}),
        allow(source(principal=[WEB])),
        allow(operation(ports=["http"])),
        allow({"when": [{"key": "request.headers[a]"}]}),
        allow(source(principals=[""])),
    ],
)
def test_malformed_policies_raise(bad: Mapping[str, Any]) -> None:
    with pytest.raises(ValueError):
        allowed(bad)
