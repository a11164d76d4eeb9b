"""MC702-MC704: selectors and versions that select no pods in the manifests."""

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

ROLLOUT = """\
apiVersion: meshc/v1
kind: Rollout
metadata: {name: reviews, namespace: shop}
spec:
  service: reviews
  stable: v1
  split: {v1: 80, v2: 20}
"""
VERSIONS = "{v1: {labels: {version: v1}}, v2: {labels: {version: v2}}}"


def test_selector_matching_no_pod_template_is_reported_with_the_kubernetes_service() -> None:
    manifests = {
        "cart.yaml": documents(
            deployment("cartservice", account="cart"), kube_service("cart"), account("cart")
        )
    }
    compilation = lint_with({"cart.yaml": service("cart")}, manifests)
    [finding] = found(compilation, "MC702")
    assert (finding.span.file, finding.span.line) == ("cart.yaml", 3)  # metadata: {name: cart
    assert "selects pods labelled {app: cart}" in finding.message
    assert "none of the 1 pod template(s) of namespace shop" in finding.message
    related = [(r.span.file, r.span.line, r.message) for r in finding.related]
    assert related[0] == ("cart.yaml", 15, "Kubernetes Service shop/cart selects {app: cart}")
    assert related[1][:2] == ("cart.yaml", 7)  # the pod template's labels
    assert "Deployment shop/cartservice: pods labelled {app: cartservice}" in related[1][2]


def test_selector_that_matches_passes_and_points_at_a_written_selector() -> None:
    good = lint_with(
        {"cart.yaml": service("cart", selector="{app: cartservice}")},
        {"cart.yaml": documents(deployment("cartservice", account="cart"), account("cart"))},
    )
    assert "MC702" not in workload_codes(good)
    bad = lint_with(
        {"cart.yaml": service("cart", selector="{app: carts}")},
        {"cart.yaml": documents(deployment("cartservice", account="cart"), account("cart"))},
    )
    [finding] = found(bad, "MC702")
    assert finding.span.line == 7  # the selector line, not the name


def test_match_expressions_of_a_controller_are_honoured() -> None:
    """The Deployment selects its pods with matchExpressions; the service still matches."""
    manifest = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: cart, namespace: shop}
    spec:
      selector:
        matchLabels: {app: cart}
        matchExpressions: [{key: tier, operator: In, values: [backend, api]}]
      template:
        metadata: {labels: {app: cart, tier: backend}}
        spec:
          serviceAccountName: cart
          containers: [{name: main, ports: [{containerPort: 7070}]}]
    """
    compilation = lint_with(
        {"cart.yaml": service("cart")}, {"d.yaml": manifest, "a.yaml": account("cart")}
    )
    assert workload_codes(compilation) == ["MC710"]  # only the missing Kubernetes Service


def test_canary_whose_pods_carry_only_app_is_reported_at_the_rollout_split() -> None:
    """The issue's failure: split {v1: 80, v2: 20} lowered to subsets selecting version:
    v1/v2 while the pods carry only app: both subsets are empty."""
    intents = {
        "reviews.yaml": service("reviews", versions=VERSIONS),
        "rollout.yaml": ROLLOUT,
    }
    compilation = lint_with(intents, {"reviews.yaml": app("reviews")})
    findings = found(compilation, "MC704")
    assert [(d.span.file, d.span.line, d.span.col) for d in findings] == [
        ("rollout.yaml", 7, 11),  # split: {v1: 80, ...
        ("rollout.yaml", 7, 19),  # ..., v2: 20}
    ]
    assert all(d.severity.label == "error" for d in findings)
    first = findings[0]
    assert "Rollout reviews sends 80% to version 'v1' of shop/reviews" in first.message
    assert "fails with 503" in first.message
    version, pods = first.related
    assert (version.span.file, version.span.line) == ("reviews.yaml", 7)
    assert (
        version.message == "version 'v1' of shop/reviews: pods labelled {app: reviews, version: v1}"
    )
    assert (pods.span.file, pods.span.line) == ("reviews.yaml", 7)
    assert pods.message == "Deployment shop/reviews: pods labelled {app: reviews}"
    assert "MC703" not in workload_codes(compilation)


def test_canary_with_labelled_pod_templates_passes() -> None:
    intents = {
        "reviews.yaml": service("reviews", versions=VERSIONS),
        "rollout.yaml": ROLLOUT,
    }
    manifests = {
        "v1.yaml": deployment(
            "reviews-v1", labels="{app: reviews, version: v1}", account="reviews"
        ),
        "v2.yaml": deployment(
            "reviews-v2", labels="{app: reviews, version: v2}", account="reviews"
        ),
        "svc.yaml": documents(kube_service("reviews"), account("reviews")),
    }
    assert workload_codes(lint_with(intents, manifests)) == []


def test_version_no_rollout_routes_to_is_a_warning_at_the_version() -> None:
    manifests = {
        "v1.yaml": deployment(
            "reviews-v1", labels="{app: reviews, version: v1}", account="reviews"
        ),
        "svc.yaml": documents(kube_service("reviews"), account("reviews")),
    }
    compilation = lint_with({"reviews.yaml": service("reviews", versions=VERSIONS)}, manifests)
    [finding] = found(compilation, "MC703")
    assert finding.severity.label == "warning"
    assert (finding.span.file, finding.span.line) == ("reviews.yaml", 7)
    assert "version 'v2' of shop/reviews selects pods labelled {app: reviews, version: v2}" in (
        finding.message
    )
    assert [r.span.file for r in finding.related] == ["v1.yaml"]
    assert "MC704" not in workload_codes(compilation)


def test_namespace_the_manifests_do_not_describe_is_not_judged_and_noted() -> None:
    compilation = lint_with(
        {"cart.yaml": service("cart"), "web.yaml": service("web", namespace="front")},
        {"cart.yaml": app("cart")},
    )
    assert workload_codes(compilation) == []
    assert (
        "workloads: the manifests describe nothing in namespace front; its services were not "
        "checked against them"
    ) in compilation.notes


def test_no_manifests_means_no_workload_findings_or_notes() -> None:
    compilation = lint_with({"cart.yaml": service("cart")}, {})
    assert workload_codes(compilation) == []
    assert not any(note.startswith("workloads:") for note in compilation.notes)
