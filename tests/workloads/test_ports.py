"""MC708-MC710: container ports and the Kubernetes Service against the declared ports."""

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


def test_target_port_no_container_declares_is_a_warning() -> None:
    manifests = {
        "cart.yaml": documents(
            deployment("cart", ports="[{name: grpc, containerPort: 8080}]"),
            kube_service("cart", ports="[{port: 7070, targetPort: 7070}]"),
            account("cart"),
        )
    }
    compilation = lint_with({"cart.yaml": service("cart")}, manifests)
    [finding] = found(compilation, "MC708")
    assert finding.severity.label == "warning"
    assert finding.span.line == 6  # ports: [{name: grpc, port: 7070 ...
    assert "targets container port 7070, which no container of its pods declares" in (
        finding.message
    )
    assert "they declare 8080" in finding.message
    assert [r.message for r in finding.related] == ["Deployment shop/cart declares 8080 (grpc)"]


def test_target_port_declared_by_a_container_passes() -> None:
    intents = {"cart.yaml": service("cart", ports="[{name: grpc, port: 7070, targetPort: 8080}]")}
    manifests = {
        "cart.yaml": documents(
            deployment("cart", ports="[{name: grpc, containerPort: 8080}]"),
            kube_service("cart", ports="[{port: 7070, targetPort: grpc}]"),
            account("cart"),
        )
    }
    assert workload_codes(lint_with(intents, manifests)) == []


def test_containers_that_declare_no_port_are_not_judged() -> None:
    manifests = {"cart.yaml": app("cart", ports="[]")}
    assert "MC708" not in workload_codes(lint_with({"cart.yaml": service("cart")}, manifests))


def test_port_the_kubernetes_service_does_not_have_is_an_error() -> None:
    manifests = {
        "cart.yaml": documents(
            deployment("cart"), kube_service("cart", ports="[{port: 80}]"), account("cart")
        )
    }
    compilation = lint_with({"cart.yaml": service("cart")}, manifests)
    [finding] = found(compilation, "MC709")
    assert "port 7070 of shop/cart is not a port of the Kubernetes Service shop/cart" in (
        finding.message
    )
    assert finding.related[0].message == "Kubernetes Service shop/cart: ports 80"


def test_kubernetes_service_sending_the_port_elsewhere_is_an_error() -> None:
    """A named targetPort is resolved through the selected containers' port names."""
    manifests = {
        "cart.yaml": documents(
            deployment(
                "cart",
                ports="[{name: grpc, containerPort: 7070}, {name: admin, containerPort: 9090}]",
            ),
            kube_service("cart", ports="[{port: 7070, targetPort: admin}]"),
            account("cart"),
        )
    }
    compilation = lint_with({"cart.yaml": service("cart")}, manifests)
    [finding] = found(compilation, "MC709")
    assert "the Kubernetes Service shop/cart sends it to 9090" in finding.message
    assert finding.hint == "set targetPort: 9090"


def test_missing_kubernetes_service_is_a_warning() -> None:
    manifests = {"cart.yaml": documents(deployment("cart"), account("cart"), kube_service("carts"))}
    compilation = lint_with({"cart.yaml": service("cart")}, manifests)
    [finding] = found(compilation, "MC710")
    assert finding.severity.label == "warning"
    assert "define no Kubernetes Service cart (it has carts)" in finding.message
