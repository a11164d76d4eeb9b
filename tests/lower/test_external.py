"""External destinations (issue 10 item 4): the kind, its lint rules, its ServiceEntry, the
callers' Sidecar egress and the Mesh's outboundTrafficPolicy — judged by evaluating the
rendered objects with tests/oracle (Istio's registry, exportTo and Sidecar egress)."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.artifacts import Artifacts
from compiler.verify.crds import check_artifacts, load_crd_files
from tests.helpers import codes, compile_files, findings
from tests.lower.support import REFERENCE_CRDS, objects, render_files
from tests.oracle.istio import Caller, proxy_outcome

MESH = """\
apiVersion: meshc/v1
kind: Mesh
metadata: {name: shop, namespace: shop}
spec: {outboundTrafficPolicy: REGISTRY_ONLY}
"""
SHOP = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: checkout, namespace: shop}
spec:
  ports: [{name: grpc, port: 5050, protocol: grpc}]
  calls: [payments, payments/fraud-api]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: payments, namespace: shop}
spec:
  ports: [{name: grpc, port: 50051, protocol: grpc}]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: cart, namespace: shop}
spec:
  ports: [{name: tcp, port: 6379, protocol: tcp}]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: payments, namespace: shop}
spec:
  service: payments
  rules: [{from: [{service: checkout}]}]
"""
FRAUD = """\
apiVersion: meshc/v1
kind: External
metadata: {name: fraud-api, namespace: payments}
spec:
  hosts: [api.fraud.example, eu.fraud.example]
  ports: [{name: https, port: 443, protocol: https}]
"""
CHECKOUT = Caller("shop", {"app": "checkout"})
CART = Caller("shop", {"app": "cart"})


def files(**extra: str) -> dict[str, str]:
    return {"mesh.yaml": MESH, "shop.yaml": SHOP, "fraud.yaml": FRAUD, **extra}


def kubernetes_services() -> list[dict[str, Any]]:
    """The application's own Kubernetes Services (from its manifests, not from meshc), so the
    oracle's registry holds the in-mesh hosts as a cluster would."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"ports": [{"name": "p", "port": port}]},
        }
        for name, port in (("checkout", 5050), ("payments", 50051), ("cart", 6379))
    ]


def rendered(documents: dict[str, str]) -> list[dict[str, Any]]:
    return [obj for _, obj in render_files(documents)] + kubernetes_services()


def test_calling_an_external_lowers_to_a_service_entry_exported_to_its_callers() -> None:
    entry = objects(render_files(files()), "ServiceEntry")["payments/fraud-api"]
    assert entry["spec"] == {
        "hosts": ["api.fraud.example", "eu.fraud.example"],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}],
        "resolution": "DNS",
        "exportTo": ["payments", "shop"],
    }
    assert entry["metadata"]["annotations"]["meshc.io/source"] == (
        "fraud.yaml#External/payments/fraud-api"
    )


def test_the_caller_reaches_the_external_hosts_and_nothing_else_under_registry_only() -> None:
    world = rendered(files())
    for host in ("api.fraud.example", "eu.fraud.example"):
        assert proxy_outcome(world, CHECKOUT, host, 443) == "known"
    assert proxy_outcome(world, CHECKOUT, "api.fraud.example", 80) == "blocked"
    assert proxy_outcome(world, CHECKOUT, "evil.example", 443) == "blocked"
    assert proxy_outcome(world, CHECKOUT, "payments.shop.svc.cluster.local", 50051) == "known"
    # cart does not declare the call: its Sidecar does not import the host
    assert proxy_outcome(world, CART, "api.fraud.example", 443) == "blocked"


def test_before_the_fix_the_sidecar_hid_the_applications_own_service_entry() -> None:
    """The issue's failure: the application's hand-written ServiceEntry is invisible to a
    caller whose generated Sidecar imports only its calls. Declared as an External and
    called, the same host is imported."""
    hand_written = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "fraud", "namespace": "payments"},
        "spec": {
            "hosts": ["api.fraud.example"],
            "ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}],
            "resolution": "DNS",
        },
    }
    without = files(**{"fraud.yaml": ""})
    without["shop.yaml"] = SHOP.replace(", payments/fraud-api]", "]")
    world = [*rendered(without), hand_written]
    assert proxy_outcome(world, CHECKOUT, "api.fraud.example", 443) == "blocked"
    assert proxy_outcome(rendered(files()), CHECKOUT, "api.fraud.example", 443) == "known"


def test_outbound_traffic_policy_is_on_every_sidecar_only_when_set() -> None:
    sidecars = objects(render_files(files()), "Sidecar")
    assert {s["spec"]["outboundTrafficPolicy"]["mode"] for s in sidecars.values()} == {
        "REGISTRY_ONLY"
    }
    allow_any = files(**{"mesh.yaml": MESH.replace("REGISTRY_ONLY", "ALLOW_ANY")})
    assert proxy_outcome(rendered(allow_any), CART, "evil.example", 443) == "passthrough"
    unset = files(
        **{"mesh.yaml": MESH.replace("spec: {outboundTrafficPolicy: REGISTRY_ONLY}", "spec: {}")}
    )
    assert all(
        "outboundTrafficPolicy" not in s["spec"]
        for s in objects(render_files(unset), "Sidecar").values()
    )


def test_resolutions_static_and_none() -> None:
    static = FRAUD.replace("  ports:", "  resolution: static\n  addresses: [203.0.113.7]\n  ports:")
    entry = objects(render_files(files(**{"fraud.yaml": static})), "ServiceEntry")
    assert entry["payments/fraud-api"]["spec"]["resolution"] == "STATIC"
    assert entry["payments/fraud-api"]["spec"]["endpoints"] == [{"address": "203.0.113.7"}]
    wildcard = FRAUD.replace("[api.fraud.example, eu.fraud.example]", "['*.fraud.example']")
    wildcard = wildcard.replace("  ports:", "  addresses: [198.51.100.0/24]\n  ports:")
    spec = objects(render_files(files(**{"fraud.yaml": wildcard})), "ServiceEntry")[
        "payments/fraud-api"
    ]["spec"]
    assert (spec["resolution"], spec["addresses"]) == ("NONE", ["198.51.100.0/24"])
    world = rendered(files(**{"fraud.yaml": wildcard}))
    assert proxy_outcome(world, CHECKOUT, "api.fraud.example", 443) == "known"


@pytest.mark.parametrize(
    ("spec_edit", "message"),
    [
        (("[api.fraud.example, eu.fraud.example]", "['*.fraud.example']\n  resolution: dns"),
         "is a wildcard"),
        (("  ports:", "  resolution: static\n  ports:"), "resolution: static needs addresses"),
        (("  ports:", "  addresses: [not-an-ip]\n  ports:"), "addresses"),
        (("[{name: https, port: 443, protocol: https}]",
          "[{name: https, port: 443, protocol: https}, {name: tls, port: 443, protocol: tls}]"),
         "port '443' is listed twice"),
        (("protocol: https", "protocol: http2"), "protocol"),
    ],
)  # fmt: skip
def test_invalid_externals_are_schema_errors_at_their_line(
    spec_edit: tuple[str, str], message: str
) -> None:
    compilation = compile_files(files(**{"fraud.yaml": FRAUD.replace(*spec_edit)}))
    errors = [d for d in compilation.blocking() if d.span.file == "fraud.yaml"]
    assert errors and errors[0].code.startswith("MC1"), [d.message for d in errors]
    assert any(message in d.message for d in errors), [d.message for d in errors]


def test_a_call_to_a_declared_external_is_not_an_unknown_service() -> None:
    compilation = compile_files(files())
    assert compilation.ok and "MC201" not in codes(compilation)
    missing = compile_files(files(**{"fraud.yaml": ""}))
    [unknown] = findings(missing, "MC201")
    assert "no Service or External declares" in unknown.message


def test_an_external_named_like_a_service_is_refused() -> None:
    clash = FRAUD.replace("name: fraud-api, namespace: payments", "name: cart, namespace: shop")
    [finding] = findings(compile_files(files(**{"clash.yaml": clash})), "MC243")
    assert finding.span.file == "clash.yaml" and "would be ambiguous" in finding.message


def test_a_duplicate_external_and_an_unused_one_are_reported() -> None:
    compilation = compile_files(files(**{"zz-again.yaml": FRAUD}))  # files are read by name
    [duplicate] = findings(compilation, "MC244")
    assert duplicate.span.file == "zz-again.yaml" and "fraud.yaml" in duplicate.message
    unused = FRAUD.replace("name: fraud-api", "name: maps-api")
    [finding] = findings(compile_files(files(**{"maps.yaml": unused})), "MC245")
    assert finding.message == "no service calls External payments/maps-api"


def test_service_entries_and_sidecars_validate_against_istios_crds() -> None:
    if not REFERENCE_CRDS.is_file():
        reason = f"Istio's CRD file is not at {REFERENCE_CRDS} (a fresh clone); check skipped"
        print(reason)
        pytest.skip(reason)
    crds = load_crd_files([REFERENCE_CRDS])
    static = FRAUD.replace("  ports:", "  resolution: static\n  addresses: [203.0.113.7]\n  ports:")
    pinned = FRAUD.replace("  ports:", "  addresses: [203.0.113.7/32, 198.51.100.0/24]\n  ports:")
    single = FRAUD.replace("  ports:", "  addresses: [203.0.113.7/32]\n  ports:")
    variants = (static, pinned, single)
    for variant in (files(), *(files(**{"fraud.yaml": text}) for text in variants)):
        artifacts: Artifacts = render_files(variant)
        report = check_artifacts(artifacts, crds)
        assert {k.kind for k, _ in artifacts} >= {"ServiceEntry", "Sidecar"}
        assert report.problems == [], "\n".join(str(p) for p in report.problems)


def test_a_tcp_port_without_addresses_is_warned_and_single_ips_are_matched() -> None:
    tcp = FRAUD.replace(
        "{name: https, port: 443, protocol: https}", "{name: pg, port: 5432, protocol: tcp}"
    )
    [warning] = findings(compile_files(files(**{"fraud.yaml": tcp})), "MC246")
    assert warning.message == (
        "External payments/fraud-api: tcp port 5432 has no addresses to match, so every "
        "connection to port 5432 is sent to it, whatever the host"
    )
    with_ips = tcp.replace("  ports:", "  addresses: [203.0.113.7, 203.0.113.8/32]\n  ports:")
    compilation = compile_files(files(**{"fraud.yaml": with_ips}))
    assert findings(compilation, "MC246") == []
    spec = objects(render_files(files(**{"fraud.yaml": with_ips})), "ServiceEntry")[
        "payments/fraud-api"
    ]["spec"]
    assert (spec["resolution"], spec["addresses"]) == ("DNS", ["203.0.113.7", "203.0.113.8"])
    ranged = tcp.replace("  ports:", "  addresses: [203.0.113.0/24]\n  ports:")
    assert len(findings(compile_files(files(**{"fraud.yaml": ranged})), "MC246")) == 1
