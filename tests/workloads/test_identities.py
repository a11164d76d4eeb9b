"""MC705-MC707: the ServiceAccount a service's pods really run as."""

from __future__ import annotations

from tests.workloads.helpers import (
    account,
    app,
    deployment,
    documents,
    found,
    kube_service,
    lint_with,
    service,
    workload_codes,
)


def test_identity_without_a_service_account_is_a_warning_naming_the_defined_ones() -> None:
    manifests = {
        "cart.yaml": documents(deployment("cart"), kube_service("cart"), account("cartservice"))
    }
    compilation = lint_with({"cart.yaml": service("cart")}, manifests)
    [finding] = found(compilation, "MC705")
    assert finding.severity.label == "warning"
    assert (finding.span.file, finding.span.line) == ("cart.yaml", 5)  # identity: cart
    assert "which the manifests of namespace shop do not define (it defines cartservice)" in (
        finding.message
    )
    [related] = finding.related
    assert related.message == "Deployment shop/cart runs as cart"
    assert (related.span.file, related.span.line) == ("cart.yaml", 9)  # serviceAccountName


def test_identity_whose_account_exists_passes() -> None:
    assert workload_codes(lint_with({"cart.yaml": service("cart")}, {"a.yaml": app("cart")})) == []


def test_pods_running_as_another_account_are_an_error() -> None:
    manifests = {
        "cart.yaml": documents(
            deployment("cart", account="shop-runner"),
            kube_service("cart"),
            account("cart"),
            account("shop-runner"),
        )
    }
    compilation = lint_with({"cart.yaml": service("cart")}, manifests)
    [finding] = found(compilation, "MC706")
    assert finding.severity.label == "error"
    assert "has identity cart, but the pods of Deployment shop/cart run as shop-runner" in (
        finding.message
    )
    assert "spiffe://cluster.local/ns/shop/sa/cart" in finding.message
    assert [r.message for r in finding.related] == ["Deployment shop/cart runs as shop-runner"]


def test_pod_spec_without_service_account_runs_as_default() -> None:
    manifests = {"cart.yaml": documents(deployment("cart", account=None), kube_service("cart"))}
    compilation = lint_with({"cart.yaml": service("cart", identity="cart")}, manifests)
    [finding] = found(compilation, "MC706")
    assert "run as default" in finding.message
    [related] = finding.related
    assert related.message == (
        "Deployment shop/cart runs as default (its pod spec names no serviceAccountName)"
    )
    assert related.span.line == 8  # the pod spec


def test_identity_default_matches_pods_without_an_account() -> None:
    manifests = {"cart.yaml": documents(deployment("cart", account=None), kube_service("cart"))}
    compilation = lint_with({"cart.yaml": service("cart", identity="default")}, manifests)
    assert workload_codes(compilation) == []  # default always exists; one service alone


def test_several_services_sharing_the_default_account_are_warned() -> None:
    intents = {
        "cart.yaml": service("cart", identity="default"),
        "checkout.yaml": service("checkout", identity="default"),
    }
    manifests = {
        "cart.yaml": documents(deployment("cart", account=None), kube_service("cart")),
        "checkout.yaml": documents(deployment("checkout", account=None), kube_service("checkout")),
    }
    compilation = lint_with(intents, manifests)
    findings = found(compilation, "MC707")
    assert [d.span.file for d in findings] == ["cart.yaml", "checkout.yaml"]
    assert all(d.severity.label == "warning" for d in findings)
    assert "like shop/checkout: one identity for all" in findings[0].message
    assert [r.span.file for r in findings[0].related] == ["cart.yaml", "checkout.yaml"]


def test_services_with_their_own_accounts_do_not_share_default() -> None:
    intents = {"cart.yaml": service("cart"), "checkout.yaml": service("checkout")}
    manifests = {"cart.yaml": app("cart"), "checkout.yaml": app("checkout")}
    assert workload_codes(lint_with(intents, manifests)) == []
