"""Property: every valid intent tree lowers to objects Istio and Kubernetes accept.

A hypothesis strategy builds policy trees within the models' constraints — every optional
field, extreme values (ports 1/65535, 1ms and multi-day durations, 63-character names,
many versions, splits over many versions, every retryOn token, every load balancer, every
source kind, shadow/deny/audit mixes, mTLS exceptions) — and keeps those `compile_tree`
reports no error for (the rare rest is discarded with `assume`). Each kept tree is lowered
and checked:

- every Istio object against Istio's published CRDs (strict schema + CEL rules), when the
  CRD file is present (it cannot be vendored; a fresh clone skips that assertion, saying so);
- every NetworkPolicy against Kubernetes' schema (kubernetes-validate, strict);
- lowering is deterministic: two lowerings of two compilations give the same bytes.

CI runs a fixed, derandomised set of examples; `MESHC_FUZZ_EXAMPLES=2000` runs more.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compiler.api import Compilation, compile_tree
from compiler.artifacts import Artifacts, to_yaml_stream
from compiler.cli.common import rollout_steps
from compiler.diagnostics import Severity
from compiler.kinds.resilience.model import RETRY_ON_TOKENS
from compiler.lower import lower
from compiler.verify.crds import CrdSet, check_artifacts, load_crd_files
from tests.helpers import NOW, run_cli, tree, write_tree
from tests.lower.support import REFERENCE_CRDS

T = TypeVar("T")
K8S_VERSION = "1.30"
EXAMPLES = int(os.environ.get("MESHC_FUZZ_EXAMPLES", "30"))
Doc = dict[str, Any]

LONG_NS = "n" + "-" * 61 + "n"
LONG_NAME = "s" * 63
NAMESPACES = ("shop", "a", "ns-1", LONG_NS, "z9")
SERVICES = ("api", "db", "web-2", LONG_NAME, "x", "ratings")
VERSIONS = ("v1", "v2", "v3", "canary", "stable", "b", "v" * 63, "0")
PORTS = (1, 80, 443, 8080, 9090, 65535)
DURATIONS = (
    "1ms", "1.5ms", "2ms", "999ms", "1s", "1.25s", "30s", "1m30s", "90s", "1h", "24h",
    "1d", "30d", "1h0m1ms", "0.5m", "100d", "106751d", "1.0000001s",
)  # fmt: skip
HEADERS = ("x-canary", "X-User", "end-user", "x_weird.name", "accept", "x-a1")
HEADER_VALUES = ("yes", "", "a b", "ü", "v1,v2", "*", "'quoted'", '"dq"', "#hash", "x: y")
REGEXES = ("^v[0-9]+$", ".*", "a|b", "[a-z]{1,3}", "(?i)chrome")
LABEL_VALUES = ("a", "", "t" * 63, "a.b_c-d", "A9")
BAD_LABEL_VALUES = ("*", "a b", "-x", "x/y", "ü")
"""Label values lint rejects (MC103): drawn rarely, to check lint keeps them from Istio."""
PATHS = ("*", "/", "/api/*", "*.json", "/exact/path", "/a b", "/ü", "/api/v1/*")


@cache
def reference_crds() -> CrdSet | None:
    return load_crd_files([REFERENCE_CRDS]) if REFERENCE_CRDS.is_file() else None


def subset(draw: st.DrawFn, items: list[T] | tuple[T, ...], *, min_size: int = 0) -> list[T]:
    """A random sub-list (order kept) of `items`."""
    if not items:
        return []
    chosen = draw(st.sets(st.sampled_from(range(len(items))), min_size=min_size))
    return [items[i] for i in sorted(chosen)]


def maybe(draw: st.DrawFn, strategy: st.SearchStrategy[T]) -> T | None:
    return draw(st.none() | strategy)


def drop_none(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if v is not None}


def document(kind: str, name: str, namespace: str, spec: Doc) -> Doc:
    return {
        "apiVersion": "meshc/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def rarely(common: st.SearchStrategy[T], rare: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """`common`, or one time in 64 `rare` (values lint rejects, so the tree is discarded)."""
    return st.integers(0, 63).flatmap(lambda n: rare if n == 0 else common)


def durations() -> st.SearchStrategy[str]:
    return rarely(st.sampled_from(DURATIONS), st.sampled_from(["106752d", "0.5ms"]))


def label_values() -> st.SearchStrategy[str]:
    return rarely(st.sampled_from(LABEL_VALUES), st.sampled_from(BAD_LABEL_VALUES))


def counts(*, zero: bool) -> st.SearchStrategy[int]:
    """Counts Istio's int32 fields hold (small ones, and the bounds)."""
    common = st.integers(0 if zero else 1, 12) | st.just(2**31 - 1)
    return rarely(common, st.sampled_from([2**31, 2**32]))


@st.composite
def service_specs(draw: st.DrawFn, name: str) -> Doc:
    count = draw(st.sampled_from([0, 1, 1, 2, 3]))  # 0: a caller only
    numbers = draw(st.lists(st.sampled_from(PORTS), min_size=count, max_size=count, unique=True))
    protocols = st.sampled_from(["http", "http2", "grpc", "tcp"])
    ports = [
        drop_none(
            {
                "name": draw(st.sampled_from(["http", "grpc", "tcp-db", "p" * 61, "web"]))
                + f"-{i}",
                "port": number,
                "targetPort": maybe(draw, st.sampled_from([1, 8080, 65535, number])),
                "protocol": maybe(draw, protocols),
            }
        )
        for i, number in enumerate(numbers)
    ]
    versions = subset(draw, VERSIONS)
    if draw(st.booleans()) and len(versions) < 2:
        versions = [f"v{i}" for i in range(draw(st.integers(2, 12)))]
    version_docs: Doc = {}
    for version in versions:
        labels = {"version": version}
        if draw(st.booleans()):
            labels["track"] = draw(label_values())
        version_docs[version] = drop_none(
            {
                "labels": labels,
                "endpoints": draw(
                    st.lists(st.sampled_from(["10.0.0.1:8080", "host:1", "h:65535"]), max_size=2)
                )
                or None,
            }
        )
    selector = draw(
        st.none()
        | st.just({"app": name})
        | st.just({"app": name, "tier": "backend"})
        | st.just({"app.kubernetes.io/name": name, "x": ""})
        | label_values().map(lambda value: {"app": name, "odd": value})
    )
    return drop_none(
        {
            "selector": selector,
            "identity": maybe(draw, st.sampled_from(["sa", "i" * 63, name])),
            "ports": ports or None,
            "versions": version_docs or None,
        }
    )


@st.composite
def sources(
    draw: st.DrawFn, services: list[tuple[str, str]], namespaces: list[str], owner: str
) -> Doc:
    ns, name = draw(st.sampled_from(services))
    kind = draw(
        st.sampled_from(
            ["service", "service-ns", "namespace", "identity", "spiffe", "wild", "gw", "wild-ns"]
        )
    )
    if kind == "service" and ns == owner:
        return {"service": name}
    if kind == "service":
        return {"service": f"{ns}/{name}"}
    if kind == "service-ns":
        return {"service": f"{ns}/{name}"}
    if kind == "namespace":
        return {"namespace": draw(st.sampled_from(namespaces))}
    if kind == "identity":
        return {"identity": f"{ns}/{draw(st.sampled_from(['sa', name, 'a.b']))}"}
    if kind == "spiffe":
        return {"identity": f"spiffe://other.domain/ns/{ns}/sa/{name}"}
    if kind == "wild":
        return {draw(st.sampled_from(["service", "identity"])): "*"}
    if kind == "wild-ns":
        return {"namespace": "*"}
    return {"ingressGateway": True}


@st.composite
def rules(
    draw: st.DrawFn,
    spec: Doc,
    services: list[tuple[str, str]],
    namespaces: list[str],
    owner: str,
) -> Doc:
    ports: list[Doc] = spec["ports"]
    http_ports = [p for p in ports if p.get("protocol") != "tcp"]
    from_ = draw(st.lists(sources(services, namespaces, owner), min_size=1, max_size=4))
    chosen = subset(draw, ports)
    to_ports: list[int | str] = [draw(st.sampled_from([p["port"], p["name"]])) for p in chosen]
    l7 = (
        all(p.get("protocol") != "tcp" for p in chosen) if chosen else len(http_ports) == len(ports)
    )
    methods = (
        subset(draw, ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) if l7 else []
    )
    paths = subset(draw, PATHS) if l7 else []
    headers = (
        {
            h: draw(st.lists(st.sampled_from(HEADER_VALUES), min_size=1, max_size=3))
            for h in subset(draw, HEADERS)
        }
        if l7
        else {}
    )
    wildcard = any("*" in s.values() for s in from_)
    to = drop_none({"ports": to_ports or None, "methods": methods or None, "paths": paths or None})
    return drop_none(
        {
            "from": from_,
            "to": to or None,
            "headers": headers or None,
            "action": draw(st.sampled_from([None, "allow", "deny"])),
            "log": maybe(draw, st.booleans()),
            "justification": "fuzzed" if wildcard or draw(st.booleans()) else None,
        }
    )


@st.composite
def string_matches(draw: st.DrawFn) -> Doc:
    kind = draw(st.sampled_from(["exact", "prefix", "regex"]))
    value = draw(st.sampled_from(REGEXES if kind == "regex" else HEADER_VALUES))
    return {kind: value}


def split_of(draw: st.DrawFn, versions: list[str]) -> dict[str, int]:
    """Weights over `versions` summing to 100 (zeros included)."""
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=len(versions) - 1,
                                max_size=len(versions) - 1)))  # fmt: skip
    bounds = [0, *cuts, 100]
    return {v: bounds[i + 1] - bounds[i] for i, v in enumerate(versions)}


@st.composite
def rollout_specs(draw: st.DrawFn, name: str, spec: Doc) -> Doc:
    versions = sorted(spec["versions"])
    all_tcp = all(p.get("protocol") == "tcp" for p in spec["ports"])
    stable = draw(st.sampled_from(versions))
    out: Doc = {"service": name, "stable": stable}
    others = [v for v in versions if v != stable]
    form = draw(st.sampled_from(["none", "split", "steps"] if others else ["none", "split"]))
    if form == "split":
        out["split"] = split_of(draw, [stable, *subset(draw, others)])
    elif form == "steps":
        out["canary"] = draw(st.sampled_from(others))
        weights = sorted(draw(st.lists(st.integers(0, 100), max_size=5)))
        out["steps"] = [
            drop_none(
                {
                    "weight": w,
                    "pause": maybe(draw, durations()),
                    "analysis": maybe(
                        draw,
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "successRate": st.sampled_from([0, 99.5, 100]),
                                "maxLatency": durations(),
                                "interval": durations(),
                            },
                        ),
                    ),
                }
            )
            for w in [*weights, 100]
        ]
    if not all_tcp:
        out["match"] = [
            drop_none(
                {
                    "headers": {h: draw(string_matches()) for h in subset(draw, HEADERS[:4])}
                    or None,
                    "cookies": {
                        c: draw(string_matches())
                        for c in subset(draw, ["session", "ab.test", "u_id"])
                    }
                    or None,
                    "version": draw(st.sampled_from(versions)),
                }
            )
            for _ in range(draw(st.integers(0, 3)))
        ]
        out["match"] = [m for m in out["match"] if "headers" in m or "cookies" in m] or None
        if draw(st.booleans()):
            out["mirror"] = drop_none(
                {
                    "version": draw(st.sampled_from(versions)),
                    "percentage": maybe(draw, st.sampled_from([0, 0.01, 50, 99.99, 100])),
                    "allowNonIdempotent": maybe(draw, st.booleans()),
                }
            )
    return drop_none(out)


@st.composite
def load_balancers(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["simple", "header", "cookie", "ip"]))
    if kind == "simple":
        return draw(st.sampled_from(["round-robin", "least-request", "random"]))
    if kind == "header":
        return {"consistentHash": {"header": draw(st.sampled_from(HEADERS))}}
    if kind == "ip":
        return {"consistentHash": {"sourceIP": True}}
    cookie = drop_none(
        {
            "name": draw(st.sampled_from(["session", "a", "x-y.z"])),
            "ttl": maybe(draw, durations()),
            "path": maybe(draw, st.sampled_from(["/", "/api", "/a b"])),
        }
    )
    return {"consistentHash": {"cookie": cookie}}


@st.composite
def resilience_specs(draw: st.DrawFn, name: str, port: int | None) -> Doc:
    retries = drop_none(
        {
            "attempts": draw(st.integers(0, 5)),
            "perTryTimeout": maybe(draw, durations()),
            "retryOn": subset(draw, sorted(RETRY_ON_TOKENS)) or None,
            "nonIdempotent": maybe(draw, st.booleans()),
        }
    )
    breaker: dict[str, int | str] = {
        field: draw(counts(zero=field in ZERO_OK))
        for field in subset(
            draw,
            [
                "maxConnections",
                "maxPendingRequests",
                "maxRequests",
                "maxRequestsPerConnection",
                "maxRetries",
                "consecutive5xx",
                "consecutiveGatewayErrors",
            ],
        )
    }
    for field in subset(draw, ["interval", "baseEjectionTime"]):
        breaker[field] = draw(durations())
    if draw(st.booleans()):
        breaker["maxEjectionPercent"] = draw(st.sampled_from([0, 1, 50, 100]))
    return drop_none(
        {
            "service": name,
            "port": port,
            "timeout": maybe(draw, durations()),
            "retries": retries if draw(st.booleans()) else None,
            "circuitBreaker": breaker or None,
            "loadBalancer": maybe(draw, load_balancers()),
            "localRateLimit": maybe(
                draw, st.fixed_dictionaries({"requests": st.integers(1, 100), "per": durations()})
            ),
        }
    )


ZERO_OK = frozenset({"maxRequestsPerConnection", "consecutive5xx", "consecutiveGatewayErrors"})


@st.composite
def mesh_specs(draw: st.DrawFn, services: list[tuple[str, str]]) -> Doc:
    exceptions = [
        {
            "service": f"{ns}/{name}",
            "until": draw(st.sampled_from(["2026-01-01", "2099-12-31", "2026-11-25T12:00:01Z"])),
            "reason": "fuzzed migration",
        }
        for ns, name in subset(draw, services)
    ]
    mtls = drop_none(
        {
            "mode": maybe(draw, st.sampled_from(["strict", "permissive"])),
            "until": maybe(draw, st.sampled_from(["2025-01-01", "2099-01-01"])),
            "exceptions": exceptions or None,
        }
    )
    gateway = drop_none(
        {
            "namespace": maybe(draw, st.sampled_from(["gw", LONG_NS])),
            "serviceAccount": maybe(draw, st.sampled_from(["gw-sa", "g" * 63])),
            "selector": maybe(draw, st.just({"istio": "ingress", "app": "gw"})),
        }
    )
    return drop_none(
        {
            "trustDomain": maybe(draw, st.sampled_from(["cluster.local", "a.b-c.example"])),
            "clusterDomain": maybe(draw, st.sampled_from(["cluster.local", "k8s.internal"])),
            "rootNamespace": maybe(draw, st.sampled_from(["istio-system", "mesh-root"])),
            "mtls": mtls or None,
            "defaultAction": maybe(draw, st.sampled_from(["deny", "allow"])),
            "networkPolicy": maybe(
                draw,
                st.sampled_from(
                    [{"enabled": True}, {"enabled": False}, {"enabled": True, "defaultDeny": True}]
                ),
            ),
            "outboundTrafficPolicy": maybe(draw, st.sampled_from(["REGISTRY_ONLY", "ALLOW_ANY"])),
            "monitoringNamespace": maybe(draw, st.sampled_from(["monitoring", LONG_NS])),
            "ingressGateway": gateway or None,
            "istioVersion": maybe(draw, st.sampled_from(["1.22", "1.24", "1.99"])),
            "retryBudget": maybe(draw, st.sampled_from([1, 10, 1000])),
        }
    )


@st.composite
def intent_trees(draw: st.DrawFn) -> tuple[list[Doc], dict[str, int]]:
    """(documents, rollout state) of a policy tree the models accept."""
    namespaces = subset(draw, NAMESPACES, min_size=1)
    services = [
        (ns, name)
        for ns in namespaces
        for name in subset(draw, SERVICES, min_size=1)[: draw(st.integers(1, 3))]
    ]
    docs: list[Doc] = [document("Mesh", "fuzz", "default", draw(mesh_specs(services)))]
    state: dict[str, int] = {}
    specs = {(ns, name): draw(service_specs(name)) for ns, name in services}
    externals = [(ns, f"ext-{i}") for i, ns in enumerate(subset(draw, namespaces)[:2])]
    docs.extend(document("External", name, ns, draw(external_specs())) for ns, name in externals)
    servers = [key for key, spec in specs.items() if spec.get("ports")]
    for (ns, name), spec in specs.items():
        callees = subset(draw, [s for s in servers + externals if s != (ns, name)])
        if callees:
            spec["calls"] = [f"{c_ns}/{c}" if c_ns != ns else c for c_ns, c in callees]
        docs.append(document("Service", name, ns, spec))
        if not spec.get("ports"):
            continue  # a caller only: nothing may target it
        for index in range(draw(st.integers(0, 2))):
            policy = {
                "service": draw(st.sampled_from([name, f"{ns}/{name}"])),
                "mode": draw(st.sampled_from(["enforce", "shadow"])),
                "rules": draw(
                    st.lists(rules(spec, services, namespaces, ns), min_size=1, max_size=3)
                ),
            }
            docs.append(document("AccessPolicy", f"{name[:60]}-p{index}", ns, policy))
        if spec.get("versions") and draw(st.booleans()):
            docs.append(document("Rollout", name, ns, draw(rollout_specs(name, spec))))
            state[f"{ns}/{name}"] = draw(st.integers(-1, 7))
        for port in subset(draw, [None, *(p["port"] for p in spec["ports"])]):
            suffix = "" if port is None else f"-{port}"
            resilience = draw(resilience_specs(name, port))
            docs.append(document("Resilience", f"{name[:57]}{suffix}", ns, resilience))
    return docs, state


@st.composite
def external_specs(draw: st.DrawFn) -> Doc:
    """An External: plain or wildcard hosts, every protocol, each resolution it allows."""
    wildcard = draw(st.booleans())
    hosts = (
        ["*.api.example"]
        if wildcard
        else subset(draw, ["api.example", "a.b-c.example", "x" * 63 + ".example"], min_size=1)
    )
    numbers = draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=3, unique=True))
    protocols = st.sampled_from(["http", "https", "tls", "tcp", "grpc"])
    ports = [
        {"name": f"p-{i}", "port": n, "protocol": draw(protocols)} for i, n in enumerate(numbers)
    ]
    resolution = "none" if wildcard else draw(st.sampled_from([None, "dns", "static", "none"]))
    addresses = draw(
        st.sampled_from(
            [[], ["203.0.113.7"], ["203.0.113.8/32", "2001:db8::2/128"], ["198.51.100.0/24"]]
        )
    )
    if resolution == "static":
        addresses = ["203.0.113.7", "2001:db8::1"]
    return drop_none(
        {"hosts": hosts, "ports": ports, "resolution": resolution, "addresses": addresses or None}
    )


def files_of(docs: list[Doc]) -> dict[str, str]:
    """One file per document, written as JSON (which is YAML)."""
    return {
        f"doc{index:03}.yaml": json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n"
        for index, doc in enumerate(docs)
    }


DENIED_CALL = re.compile(r"^(\S+) calls (\S+), which will deny it")


def without_denied_calls(docs: list[Doc], compilation: Compilation) -> list[Doc] | None:
    """The documents minus the declared calls MC407 reports as denied (a generated tree
    cannot know its access rules' verdicts up front); None when there are none."""
    denied: set[tuple[str, str]] = set()
    for diagnostic in compilation.blocking(Severity.ERROR):
        found = DENIED_CALL.match(diagnostic.message) if diagnostic.code == "MC407" else None
        if found:
            denied.add((found[1], found[2]))
    if not denied:
        return None
    out = []
    for doc in docs:
        meta = doc["metadata"]
        caller = f"{meta['namespace']}/{meta['name']}"
        calls = doc["spec"].get("calls") if doc["kind"] == "Service" else None
        if calls:
            kept = [c for c in calls if (caller, c if "/" in c else f"{meta['namespace']}/{c}")
                    not in denied]  # fmt: skip
            doc = {**doc, "spec": {**doc["spec"], "calls": kept}}
        out.append(doc)
    return out


def valid_tree(docs: list[Doc], state: dict[str, int]) -> tuple[dict[str, str], Compilation]:
    """The tree's files and compilation, repaired of denied calls; discarded (`assume`)
    when it still has an error."""
    files = files_of(docs)
    compilation = compiled(files, state)
    repaired = without_denied_calls(docs, compilation)
    if repaired is not None:
        files = files_of(repaired)
        compilation = compiled(files, state)
    assume(compilation.ok)
    return files, compilation


def compiled(files: dict[str, str], state: dict[str, int]) -> Compilation:
    return compile_tree(tree(files, with_mesh=False), now=NOW, rollout_state=state)


def check_tree(docs: list[Doc], state: dict[str, int]) -> Artifacts:
    """Lower one tree and assert what every valid tree's objects must satisfy."""
    files, compilation = valid_tree(docs, state)
    artifacts = lower(compilation)
    again = lower(compiled(files, state))
    first_yaml = to_yaml_stream(obj for _, obj in artifacts)
    assert first_yaml == to_yaml_stream(obj for _, obj in again), "lowering is not deterministic"
    crds = reference_crds()
    if crds is not None:
        report = check_artifacts(artifacts, crds)
        assert report.problems == [], "\n".join(str(p) for p in report.problems)
        assert report.cel_gaps == {}, f"CEL rules not evaluated (overflow?): {report.cel_gaps}"
        assert report.unchecked_kinds <= {"NetworkPolicy (networking.k8s.io/v1)"}
    for key, obj in artifacts:
        if key.kind == "NetworkPolicy":
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    return artifacts


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)


def test_crd_assertion_status_is_reported() -> None:
    """Say once whether the CRD half of the property is live (it needs the reference file)."""
    if reference_crds() is None:
        reason = f"Istio's CRD file is not at {REFERENCE_CRDS}; fuzzed objects are not CRD-checked"
        print(reason)
        pytest.skip(reason)
    crds = reference_crds()
    assert crds is not None and ("networking.istio.io", "v1", "VirtualService") in crds.versions


@FUZZ
@given(intent_trees())
def test_every_valid_tree_lowers_to_objects_istio_and_kubernetes_accept(
    generated: tuple[list[Doc], dict[str, int]],
) -> None:
    docs, state = generated
    artifacts = check_tree(docs, state)
    kinds = {key.kind for key, _ in artifacts}
    assert {"PeerAuthentication", "Sidecar"} <= kinds
    servers = [d for d in docs if d["kind"] == "Service" and d["spec"].get("ports")]
    assert ("DestinationRule" in kinds) == bool(servers)  # callers only have no host
    assert ("ServiceEntry" in kinds) == any(d["kind"] == "External" for d in docs)


def render_cli(root: Path, state: dict[str, int]) -> str:
    """`meshc render` of a written tree: exit 0, the same bytes as lowering in-process."""
    state_file = root.parent / f"{root.name}-state.json"
    state_file.write_text(json.dumps(state))
    result = run_cli(
        "meshc", "render", str(root), "--now", NOW.isoformat(), "--rollout-state", str(state_file)
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@settings(FUZZ, max_examples=2)
@given(intent_trees())
def test_meshc_render_accepts_generated_trees(
    tmp_path_factory: pytest.TempPathFactory,
    generated: tuple[list[Doc], dict[str, int]],
) -> None:
    docs, state = generated
    files, compilation = valid_tree(docs, state)
    root = write_tree(tmp_path_factory.mktemp("fuzz") / "policies", files)
    # The CLI refuses a user's step past a Rollout's last (lowering clamps it): hand it the
    # clamped state, which lowers to the same objects.
    steps = rollout_steps(compilation)
    clamped = {key: min(max(step, 0), steps[key] - 1) for key, step in state.items()}
    assert render_cli(root, clamped) == to_yaml_stream(obj for _, obj in lower(compilation))
