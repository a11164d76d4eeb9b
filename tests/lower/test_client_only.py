"""Client-only workloads (issue 10 item 3): a Service without ports is a caller only.

The failure it fixes: a load generator had to be declared with a fake port, which emitted a
DestinationRule for a host that does not exist; the other way round, naming it by identity
widened the frontend's NetworkPolicy to the whole namespace. Judged by evaluating the
rendered NetworkPolicies with tests/oracle.
"""

from __future__ import annotations

import pytest

from tests.helpers import compile_files, findings
from tests.lower.support import objects, render_files
from tests.oracle.istio import Peer, connection_allowed

FRONTEND = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: frontend, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: cart, namespace: shop}
spec:
  ports: [{name: grpc, port: 7070, protocol: grpc}]
"""
LOADGEN = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: loadgenerator, namespace: shop}
spec:
  calls: [frontend]
"""
POLICY = """\
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: frontend, namespace: shop}
spec:
  service: frontend
  rules: [{from: [SOURCE]}]
"""
LOADGEN_POD = Peer("shop", {"app": "loadgenerator"})
CART_POD = Peer("shop", {"app": "cart"})
FRONTEND_POD = Peer("shop", {"app": "frontend"})


def shop(loadgen: str, source: str) -> dict[str, str]:
    return {
        "shop.yaml": FRONTEND,
        "loadgen.yaml": loadgen,
        "policy.yaml": POLICY.replace("SOURCE", source),
    }


def test_a_portless_service_is_a_caller_with_a_sidecar_and_no_host() -> None:
    artifacts = render_files(shop(LOADGEN, "{service: loadgenerator}"))
    for kind in ("DestinationRule", "VirtualService"):
        assert "shop/loadgenerator" not in objects(artifacts, kind)
    sidecar = objects(artifacts, "Sidecar")["shop/loadgenerator"]
    assert sidecar["spec"]["egress"] == [
        {"hosts": ["istio-system/*", "shop/frontend.shop.svc.cluster.local"]}
    ]
    policies = [obj for _, obj in artifacts]
    assert connection_allowed(policies, LOADGEN_POD, FRONTEND_POD, 8080)
    assert not connection_allowed(policies, CART_POD, FRONTEND_POD, 8080)


def test_before_the_fix_a_fake_port_or_an_identity_source_went_wrong() -> None:
    """What users had to write before: a fake port emits a DestinationRule for a host no
    Kubernetes Service provides; naming the caller by identity (it is no Service) opens the
    frontend to every pod of the namespace."""
    fake = LOADGEN.replace("  calls:", "  ports: [{name: http, port: 9, protocol: http}]\n  calls:")
    artifacts = render_files(shop(fake, "{service: loadgenerator}"))
    assert objects(artifacts, "DestinationRule")["shop/loadgenerator"]["spec"]["host"] == (
        "loadgenerator.shop.svc.cluster.local"
    )
    by_identity = render_files(shop("", "{identity: shop/loadgenerator}"))
    policies = [obj for _, obj in by_identity]
    assert connection_allowed(policies, CART_POD, FRONTEND_POD, 8080)  # the widening


def test_rules_rollouts_resilience_and_calls_naming_a_caller_only_are_errors() -> None:
    extra = """\
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: loadgenerator, namespace: shop}
spec: {service: loadgenerator, rules: [{from: [{service: cart}], to: {ports: [80]}}]}
---
apiVersion: meshc/v1
kind: Resilience
metadata: {name: loadgenerator, namespace: shop}
spec: {service: loadgenerator, timeout: 2s, port: 80}
---
apiVersion: meshc/v1
kind: Rollout
metadata: {name: loadgenerator, namespace: shop}
spec: {service: loadgenerator, stable: v1, split: {v1: 100}}
"""
    files = shop(LOADGEN + extra, "{service: loadgenerator}")
    files["shop.yaml"] = FRONTEND + "  calls: [loadgenerator]\n"
    compilation = compile_files(files)
    assert not compilation.ok
    [policy] = findings(compilation, "MC240")
    assert "has no ports (a caller only)" in policy.message
    assert sorted(f.message.split(" ")[0] for f in findings(compilation, "MC241")) == [
        "Resilience",
        "Rollout",
    ]
    [call] = findings(compilation, "MC242")
    assert call.message == (
        "shop/cart calls shop/loadgenerator, which has no ports (a caller only): there is no "
        "host to call"
    )
    assert findings(compilation, "MC000") == []


@pytest.mark.parametrize("default_action", ["deny", "allow"])
def test_every_rule_runs_on_a_portless_service_without_an_internal_error(
    default_action: str,
) -> None:
    """Every lint rule and the whole model read portless services without crashing (MC000
    would report a rule that raised)."""
    mesh = f"""\
apiVersion: meshc/v1
kind: Mesh
metadata: {{name: m, namespace: shop}}
spec: {{defaultAction: {default_action}, networkPolicy: {{defaultDeny: true}}}}
"""
    extra = """\
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: loadgenerator, namespace: shop}
spec:
  service: loadgenerator
  mode: shadow
  rules: [{from: [{service: '*'}], to: {methods: [POST], paths: [/x]}, headers: {x-a: [b]},
           justification: fuzz}]
---
apiVersion: meshc/v1
kind: Resilience
metadata: {name: loadgenerator, namespace: shop}
spec: {service: loadgenerator, retries: {attempts: 3}, circuitBreaker: {maxConnections: 1}}
---
apiVersion: meshc/v1
kind: Rollout
metadata: {name: loadgenerator, namespace: shop}
spec: {service: loadgenerator, stable: v1, split: {v1: 50, v2: 50}, mirror: {version: v2}}
"""
    versions = LOADGEN + "  versions: {v1: {labels: {version: v1}}, v2: {labels: {version: v2}}}\n"
    files = {**shop(versions + extra, "{service: loadgenerator}"), "mesh.yaml": mesh}
    compilation = compile_files(files)
    assert findings(compilation, "MC000") == []
    assert {"MC240", "MC241"} <= {d.code for d in compilation.diagnostics}
