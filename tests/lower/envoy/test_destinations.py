"""What the Envoy backend does with destinations beyond plain mesh services: client-only
services, Externals (DNS and static, TLS origination for https, TCP through a dedicated
listener), what it cannot express (reported, never dropped), permissive mTLS windows,
local rate limits; and the placement the intents' endpoints describe."""

from __future__ import annotations

from pathlib import Path

from google.protobuf.json_format import MessageToDict

from compiler.lower.envoy.snapshot import CLUSTER, LISTENER, ROUTE
from compiler.model.mesh import ServiceKey
from compiler.model.placement import Address, placement_from_endpoints
from tests.helpers import compile_files, tree
from tests.lower.envoy.support import (
    compile_placed,
    envoy_validate,
    findings_of,
    make_certificates,
    snapshots_of,
    static_bootstrap,
)

MESH = """\
apiVersion: meshc/v1
kind: Mesh
metadata: {name: m}
spec:
  mtls:
    mode: permissive
    until: 2099-01-01T00:00:00Z
"""

APP = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: job, namespace: shop}
spec:
  calls: [fraud-api, ledger, feed, api, anything]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  ports: [{name: http, port: 8080, protocol: http}]
  versions:
    v1: {labels: {version: v1}, endpoints: ["10.0.0.1:15006", "10.0.0.2:15006"]}
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: api, namespace: shop}
spec:
  service: api
  rules:
  - from: [{service: job}]
---
apiVersion: meshc/v1
kind: Resilience
metadata: {name: api, namespace: shop}
spec:
  service: api
  localRateLimit: {requests: 20, per: 1s}
---
apiVersion: meshc/v1
kind: External
metadata: {name: fraud-api, namespace: shop}
spec:
  hosts: [api.fraud.example, eu.fraud.example]
  ports: [{name: https, port: 443, protocol: https}]
---
apiVersion: meshc/v1
kind: External
metadata: {name: ledger, namespace: shop}
spec:
  hosts: [ledger.internal]
  resolution: static
  addresses: [192.0.2.10]
  ports: [{name: pg, port: 5432, protocol: tcp}]
---
apiVersion: meshc/v1
kind: External
metadata: {name: feed, namespace: shop}
spec:
  hosts: [feed.example]
  ports: [{name: http, port: 80, protocol: http}]
---
apiVersion: meshc/v1
kind: External
metadata: {name: anything, namespace: shop}
spec:
  hosts: ["*.cdn.example"]
  ports: [{name: https, port: 443, protocol: tls}]
"""


def compiled():  # type: ignore[no-untyped-def]
    return compile_placed(tree({"mesh.yaml": MESH, "app.yaml": APP}))


def test_externals_and_client_only_callers_are_lowered_and_accepted(tmp_path: Path) -> None:
    compilation = compiled()
    snapshots = snapshots_of(compilation)
    job = snapshots["job.shop~~0"]
    clusters = {name: MessageToDict(c) for name, c in job.resources[CLUSTER].items()}
    fraud = clusters["outbound|443||api.fraud.example"]
    assert fraud["type"] == "STRICT_DNS"
    tls = fraud["transportSocket"]["typedConfig"]
    assert tls["sni"] == "api.fraud.example", "TLS is originated to the host"
    ledger = clusters["outbound|5432||ledger.internal"]
    assert ledger["type"] == "STATIC"
    assert ledger["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]["address"][
        "socketAddress"
    ] == {"address": "192.0.2.10", "portValue": 5432}
    assert "outbound|tcp|5432|ledger.internal" in job.resources[LISTENER]
    routes = MessageToDict(job.resources[ROUTE]["outbound|http"])
    domains = {d for host in routes["virtualHosts"] for d in host["domains"]}
    assert {"feed.example", "feed.example:80", "api.fraud.example:443", "api"} <= domains
    assert not job.resources.get(ROUTE, {}).keys() - {"outbound|http"}, "no inbound side"
    certs = make_certificates()
    for node, snapshot in snapshots.items():
        result = envoy_validate(static_bootstrap(snapshot, certs), tmp_path)
        assert result.returncode == 0, f"{node}: {result.stdout}{result.stderr}"


def test_what_envoy_cannot_express_is_reported() -> None:
    findings = findings_of(compiled())
    assert any("anything" in f and "resolution none" in f for f in findings), findings
    assert all(f.startswith("app.yaml:") for f in findings), findings


def test_allow_any_outbound_is_reported() -> None:
    mesh = MESH.replace("spec:\n", "spec:\n  outboundTrafficPolicy: ALLOW_ANY\n")
    findings = findings_of(compile_placed(tree({"mesh.yaml": mesh, "app.yaml": APP})))
    assert any(f.startswith("mesh.yaml:") and "ALLOW_ANY" in f for f in findings), findings


def test_permissive_window_adds_a_plaintext_chain() -> None:
    api = snapshots_of(compiled())["api.shop~v1~0"]
    listener = MessageToDict(api.resources[LISTENER]["inbound|8080"])
    protocols = [c["filterChainMatch"]["transportProtocol"] for c in listener["filterChains"]]
    assert protocols == ["tls", "raw_buffer"]
    assert "transportSocket" not in listener["filterChains"][1]


def test_strict_mesh_has_mtls_only() -> None:
    strict = compile_placed(tree({"app.yaml": APP}))
    api = snapshots_of(strict)["api.shop~v1~0"]
    listener = MessageToDict(api.resources[LISTENER]["inbound|8080"])
    assert len(listener["filterChains"]) == 1
    assert listener["filterChains"][0]["transportSocket"]["typedConfig"]["requireClientCertificate"]


def test_local_rate_limit_rides_on_the_inbound_route() -> None:
    api = snapshots_of(compiled())["api.shop~v1~0"]
    route = MessageToDict(api.resources[ROUTE]["inbound|8080"])
    limit = route["virtualHosts"][0]["routes"][0]["typedPerFilterConfig"][
        "envoy.filters.http.local_ratelimit"
    ]
    assert limit["tokenBucket"] == {"maxTokens": 20, "tokensPerFill": 20, "fillInterval": "1s"}


def test_placement_from_endpoints() -> None:
    """Each endpoint is an instance; its sidecar takes the first port at the endpoint and
    the next ports after it; the application listens on 127.0.0.1 at the target port."""
    compilation = compile_files(
        {
            "app.yaml": """
                apiVersion: meshc/v1
                kind: Service
                metadata: {name: api, namespace: shop}
                spec:
                  ports:
                  - {name: http, port: 8080, targetPort: 8081, protocol: http}
                  - {name: grpc, port: 9090, protocol: grpc}
                  versions:
                    v1: {endpoints: ["10.0.0.1:15006", "10.0.0.2:15006"]}
                  calls: [db]
                ---
                apiVersion: meshc/v1
                kind: Service
                metadata: {name: db, namespace: shop}
                spec:
                  ports: [{name: pg, port: 5432, protocol: tcp}]
                """
        }
    )
    placement = placement_from_endpoints(compilation.model)
    assert sorted(placement) == ["api.shop~v1~0", "api.shop~v1~1"]
    second = placement["api.shop~v1~1"]
    assert second.inbound == {8080: Address("10.0.0.2", 15006), 9090: Address("10.0.0.2", 15007)}
    assert second.app == {8080: Address("127.0.0.1", 8081), 9090: Address("127.0.0.1", 9090)}
    assert second.outbound == Address("127.0.0.1", 15001)
    assert second.tcp_outbound == {(ServiceKey("shop", "db"), 5432): Address("127.0.0.1", 15101)}
