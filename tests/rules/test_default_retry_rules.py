"""MC612 (default-retry-non-idempotent): an HTTP port without declared retries gets Istio's
default retry policy, which retries 503 and gRPC unavailable/cancelled answers; it is
reported when non-idempotent methods can reach the service, and silent otherwise."""

from __future__ import annotations

from compiler.api import Compilation
from compiler.diagnostics import Severity
from tests.helpers import compile_files, findings
from tests.rules import document, locate, only, where

SERVICE = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  ports:
  - {name: http, port: 8080, protocol: http}
  - {name: admin, port: 9090, protocol: http}
  - {name: db, port: 5432, protocol: tcp}
"""

ALLOWS_POST = document(
    "AccessPolicy",
    "service: orders\nrules:\n- from: [{namespace: shop}]\n  to: {methods: [GET, POST]}\n",
    name="orders",
)

IDEMPOTENT_ONLY = ALLOWS_POST.replace("[GET, POST]", "[GET, PUT, DELETE]")


def lint(*resilience: str, policy: str = ALLOWS_POST, service: str = SERVICE) -> Compilation:
    files = {"svc.yaml": service + "---\n" + policy}
    files.update({f"res{n}.yaml": text for n, text in enumerate(resilience)})
    return compile_files(files)


def retries(spec: str, *, name: str = "orders") -> str:
    return document("Resilience", "service: orders\n" + spec, name=name)


def test_mc612_default_retries_on_a_service_accepting_post() -> None:
    compilation = lint()
    diag = only(compilation, "MC612")
    assert diag.severity is Severity.INFO
    assert where(diag) == ("svc.yaml", *locate(SERVICE, "{name: http"))
    assert "shop/orders: no Resilience sets retries for port 8080, 9090" in diag.message
    assert "Istio's default policy applies (2 retries, on 503" in diag.message
    assert "its AccessPolicies allow POST" in diag.message
    assert "retries: {attempts: 0}" in diag.hint
    assert "[connect-failure, refused-stream]" in diag.hint


def test_mc612_resilience_without_retries_and_one_covered_port() -> None:
    compilation = lint(
        retries("timeout: 2s\n", name="a"),
        retries("port: 8080\nretries: {attempts: 0}\n", name="b"),
    )
    diag = only(compilation, "MC612")
    assert where(diag) == ("svc.yaml", *locate(SERVICE, "{name: admin"))
    assert "retries for port 9090," in diag.message


def test_mc612_unrestricted_service_says_so() -> None:
    shadow = ALLOWS_POST.replace("service: orders\n", "service: orders\n  mode: shadow\n")
    diag = only(lint(policy=shadow), "MC612")
    assert "no enforced AccessPolicy restricts its methods" in diag.message


def test_mc612_silent_when_retries_are_declared() -> None:
    compilation = lint(retries("retries: {attempts: 2, retryOn: [connect-failure]}\n"))
    assert findings(compilation, "MC612") == []
    assert findings(lint(retries("retries: {attempts: 0}\n")), "MC612") == []


def test_mc612_silent_for_idempotent_methods_and_tcp() -> None:
    assert findings(lint(policy=IDEMPOTENT_ONLY), "MC612") == []
    tcp_only = SERVICE.replace("protocol: http", "protocol: tcp")
    assert findings(lint(service=tcp_only), "MC612") == []


def test_mc612_silent_when_only_the_ingress_gateway_may_post() -> None:
    # the gateway's retries come from its own VirtualService, which meshc does not write
    gateway_post = ALLOWS_POST.replace(
        "    to: {methods: [GET, POST]}\n",
        "    to: {methods: [GET]}\n  - from: [{ingressGateway: true}]\n    to: {methods: [POST]}\n",
    )
    assert "ingressGateway" in gateway_post
    assert findings(lint(policy=gateway_post), "MC612") == []
    mesh_too = gateway_post.replace(
        "{ingressGateway: true}]", "{ingressGateway: true}, {namespace: shop}]"
    )
    assert "POST" in only(lint(policy=mesh_too), "MC612").message
