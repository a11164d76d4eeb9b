"""The exact access diff against Istio's documented semantics.

Random pairs of AccessPolicies for one server, with overlapping patterns drawn on purpose
(an exact path inside a prefix, a suffix against a prefix, methods left open, ports,
header conditions, deny rules), are compiled and rendered by meshc. For random requests,
`tests/oracle/istio.py` (which imports nothing from the compiler) decides from the rendered
AuthorizationPolicies whether Istio allows them on each side; a request is allowed by head
and not by base exactly when the diff's gained set holds it (and the reverse for lost), and
then the diff reports a change for that caller and port.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from compiler.api import compile_tree
from compiler.load.discover import PolicyTree
from compiler.lower import lower
from compiler.plan.meaning import diff_meaning, summarise
from compiler.plan.requests import Request as Probe
from compiler.plan.requests import allowed
from tests.helpers import NOW
from tests.oracle.istio import Request, decide

SERVICES = """\
apiVersion: meshc/v1
kind: Mesh
metadata: {name: m}
spec: {}
---
apiVersion: meshc/v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}, {name: admin, port: 90, targetPort: 9090}]
---
apiVersion: meshc/v1
kind: Service
metadata: {name: a, namespace: shop}
spec: {identity: a-sa, ports: [{name: http, port: 80}], calls: [web]}
---
apiVersion: meshc/v1
kind: Service
metadata: {name: b, namespace: shop}
spec: {identity: b-sa, ports: [{name: http, port: 80}]}
---
apiVersion: meshc/v1
kind: Service
metadata: {name: c, namespace: other}
spec: {identity: c-sa, ports: [{name: http, port: 80}]}
"""
SOURCES = (
    "{service: a}",
    "{service: b}",
    "{service: other/c}",
    "{namespace: shop}",
    "{namespace: other}",
    "{service: '*'}",
)
PATHS = ("/api", "/api/*", "/api/v1/*", "*/edit", "*.json", "/x", "/api/v1/edit")
METHODS = ("GET", "POST", "DELETE")
CALLERS = {  # principal (without spiffe://) -> namespace
    "cluster.local/ns/shop/sa/a-sa": "shop",
    "cluster.local/ns/shop/sa/b-sa": "shop",
    "cluster.local/ns/other/sa/c-sa": "other",
    "cluster.local/ns/shop/sa/zz": "shop",
    "cluster.local/ns/far/sa/zz": "far",
}
PROBE_PATHS = ("/api", "/api/", "/api/x", "/api/v1/x", "/api/v1/edit", "/x", "/y/edit", "/a.json")


def _rule(rng: random.Random) -> str:
    source = rng.choice(SOURCES)
    lines = [f"  - from: [{source}]\n"]
    if "'*'" in source:
        lines.append("    justification: test\n")
    to = []
    if rng.random() < 0.6:
        to.append(f"methods: [{', '.join(rng.sample(METHODS, rng.randint(1, 2)))}]")
    if rng.random() < 0.7:
        to.append(f"paths: [{', '.join(repr(p) for p in rng.sample(PATHS, rng.randint(1, 3)))}]")
    if rng.random() < 0.3:
        to.append(f"ports: [{rng.choice(['http', 'admin', 80])}]")
    if to:
        lines.append(f"    to: {{{', '.join(to)}}}\n")
    if rng.random() < 0.2:
        lines.append("    headers: {x-user: [alice, 'bo*']}\n")
    if rng.random() < 0.2:
        lines.append("    action: deny\n")
    return "".join(lines)


def _policy(rng: random.Random) -> str:
    mode = "shadow" if rng.random() < 0.1 else "enforce"
    rules = "".join(_rule(rng) for _ in range(rng.randint(1, 4)))
    return (
        "apiVersion: meshc/v1\nkind: AccessPolicy\nmetadata: {name: web, namespace: shop}\n"
        f"spec:\n  service: web\n  mode: {mode}\n  rules:\n{rules}"
    )


def _side(policy: str | None) -> tuple[Any, list[dict[str, Any]]]:
    files = {"services.yaml": SERVICES.encode()}
    if policy is not None:
        files["policy.yaml"] = policy.encode()
    # a's declared call may be denied on purpose: that finding must not stop the lowering
    tree = PolicyTree(files=files, config=b"disable: [MC407]\n")
    compilation = compile_tree(tree, now=NOW)
    assert compilation.ok, [d.message for d in compilation.blocking()]
    rendered = [obj for _, obj in lower(compilation) if obj["kind"] == "AuthorizationPolicy"]
    return summarise(compilation), rendered


def _istio(rendered: list[dict[str, Any]], principal: str, probe: Probe) -> bool:
    request = Request(
        principal, CALLERS[principal], probe.method, probe.path, probe.port, dict(probe.headers)
    )
    return decide(rendered, request, workload_labels={"app": "web"}, workload_namespace="shop")


def _class_of_a(*policies: str | None) -> str:
    """How the diff names caller a: by its service when a live (enforced) rule names it,
    else by the class of callers it falls in."""
    text = "".join(p for p in policies if p is not None and "mode: shadow" not in p)
    if "{service: a}" in text:
        return "shop/a"
    if "{namespace: shop}" in text:
        return "any other identity in shop"
    return "any other mesh identity"


@pytest.mark.parametrize("seed", range(40))
def test_gained_and_lost_requests_are_exactly_what_istio_decides(seed: int) -> None:
    rng = random.Random(seed)
    base_policy = _policy(rng) if rng.random() < 0.9 else None
    head_policy = _policy(rng)
    (base, base_objects), (head, head_objects) = _side(base_policy), _side(head_policy)
    diff = diff_meaning(base, head)
    reported = {(change.caller, change.port, change.gained) for change in diff.access}
    for _ in range(60):
        principal = rng.choice(sorted(CALLERS))
        probe = Probe(
            rng.choice((*METHODS, "PUT")),
            rng.choice(PROBE_PATHS),
            rng.choice((8080, 9090)),
            rng.choice(((), (("x-user", "alice"),), (("x-user", "bob"),))),
        )
        before, after = (
            _istio(base_objects, principal, probe),
            _istio(head_objects, principal, probe),
        )
        caller = (f"spiffe://{principal}", CALLERS[principal])
        shape_before = allowed(base.access["shop/web"], caller, probe)
        shape_after = allowed(head.access["shop/web"], caller, probe)
        where = f"seed {seed}: {principal} {probe}\nbase:\n{base_policy}\nhead:\n{head_policy}"
        assert (shape_before, shape_after) == (before, after), where
        if before != after and principal.endswith("/a-sa"):
            assert (_class_of_a(base_policy, head_policy), probe.port, after) in reported, where
        if before != after:
            assert any(port == probe.port and gained == after for _, port, gained in reported), (
                where
            )
