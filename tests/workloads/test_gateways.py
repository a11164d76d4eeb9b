"""MC711-MC712: the ingress gateways the Mesh names, against the manifests."""

from __future__ import annotations

from tests.workloads.helpers import app, deployment, documents, found, lint_with, service

POLICY = """\
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: frontend, namespace: shop}
spec:
  service: frontend
  rules:
  - from: [{ingressGateway: true}]
"""
GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: frontend-gw, namespace: shop}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
"""


def _mesh(spec: str) -> str:
    return f"apiVersion: meshc/v1\nkind: Mesh\nmetadata: {{name: shop}}\nspec: {spec}\n"


def _intents(mesh_spec: str | None = None) -> dict[str, str]:
    intents = {"frontend.yaml": service("frontend"), "policy.yaml": POLICY}
    if mesh_spec is not None:
        intents["mesh.yaml"] = _mesh(mesh_spec)
    return intents


def test_default_gateway_while_the_application_has_its_own_is_an_error() -> None:
    """The issue's case: meshc's defaults (istio-system, istio-ingressgateway-service-
    account) while the application's Gateway API gateway runs in its own namespace."""
    manifests = {"frontend.yaml": app("frontend"), "gateway.yaml": GATEWAY}
    compilation = lint_with(_intents(), manifests)
    [finding] = found(compilation, "MC711")
    assert finding.severity.label == "error"
    assert (finding.span.file, finding.span.line) == ("policy.yaml", 7)
    assert finding.message.startswith(
        "meshc's default ingress gateway istio-ingressgateway (the Mesh names none) is not in "
        "the manifests (they describe nothing in namespace istio-system)"
    )
    assert "admit the gateway as istio-ingressgateway-service-account" in finding.message
    assert "the manifests provide Gateway shop/frontend-gw-istio (account frontend-gw-istio)" in (
        finding.message
    )
    assert finding.hint == (
        "name the application's gateway in the Mesh: ingressGateway: {api: gateway-api, "
        "name: frontend-gw, namespace: shop}"
    )
    [related] = finding.related
    assert (related.span.file, related.span.line) == ("gateway.yaml", 3)
    assert not any("istio-system" in note for note in compilation.notes)  # a finding, not a note


def test_mesh_naming_the_gateway_api_gateway_passes() -> None:
    intents = _intents("{ingressGateway: {api: gateway-api, name: frontend-gw, namespace: shop}}")
    compilation = lint_with(intents, {"frontend.yaml": app("frontend"), "gateway.yaml": GATEWAY})
    assert found(compilation, "MC711") == found(compilation, "MC712") == []


def test_gateway_in_a_described_namespace_without_its_pods_is_an_error() -> None:
    intents = _intents("{ingressGateway: {namespace: shop}}")
    compilation = lint_with(intents, {"frontend.yaml": app("frontend")})
    [finding] = found(compilation, "MC711")
    assert (finding.span.file, finding.span.line) == ("mesh.yaml", 4)
    assert (
        "the Mesh's ingress gateway istio-ingressgateway selects pods labelled "
        "{istio: ingressgateway} in namespace shop, but no pod template there carries them"
    ) in finding.message


def test_gateway_pods_running_as_another_account_are_an_error() -> None:
    intents = _intents("{ingressGateway: {name: edge, namespace: shop, selector: {app: edge}}}")
    manifests = {
        "frontend.yaml": app("frontend"),
        "edge.yaml": deployment("edge", account="edge-proxy"),
    }
    compilation = lint_with(intents, manifests)
    assert found(compilation, "MC711") == []
    [finding] = found(compilation, "MC712")
    assert "is admitted as service account istio-ingressgateway-service-account, but its pods " in (
        finding.message
    )
    assert "run as edge-proxy" in finding.message
    assert [r.message for r in finding.related] == ["Deployment shop/edge runs as edge-proxy"]


def test_gateway_whose_namespace_is_not_described_and_no_other_gateway_is_a_note() -> None:
    compilation = lint_with(_intents(), {"frontend.yaml": app("frontend")})
    assert found(compilation, "MC711") == []
    assert (
        "workloads: the manifests describe nothing in namespace istio-system; the ingress "
        "gateway istio-ingressgateway there was not checked against them"
    ) in compilation.notes


def test_unused_default_gateway_is_not_judged() -> None:
    """No policy admits a gateway and the Mesh names none: nothing relies on it."""
    compilation = lint_with(
        {"frontend.yaml": service("frontend")},
        {"frontend.yaml": documents(app("frontend")), "gateway.yaml": GATEWAY},
    )
    assert found(compilation, "MC711") == []
    assert not any("ingress gateway" in note for note in compilation.notes)
