"""A synthetic, realistic and lint-clean service mesh for benchmarks.

`generate_mesh(root, services=1000)` writes one Mesh and one file per service (its
Service, its AccessPolicy and, for some, a Rollout and a Resilience), spread across a
handful of namespaces. Every service that calls others has a Resilience turning Istio's
default retries off (`attempts: 0`), so only leaves retry and chains stay in the MC603
budget. The call graph is a DAG (a service only calls services with a
higher index), every declared call is allowed by the server, and every allow rule is used
by a declared call, so the tree lints clean at warning level while still exercising the
cross-file resolution and the graph rules. Deterministic for a given seed.

`shape=Shape(...)` adds odd shapes on top (more namespaces, a hub every service calls, its
policy one rule naming every caller or one rule per caller, a server with thousands of
rules, a retrying call chain, a shared identity, a service with many versions and a long
rollout); the default `Shape()` writes exactly what it always did.
Odd shapes may draw warnings (MC301, MC603, MC304...): they exist to stress the compiler.

Run as `python -m tests.bench.generate DIR --services N`.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field
from pathlib import Path

NAMESPACES = (
    "storefront",
    "catalog",
    "checkout",
    "payments",
    "identity",
    "shipping",
    "search",
    "media",
    "notify",
    "analytics",
)
NOUNS = (
    "cart",
    "order",
    "price",
    "stock",
    "user",
    "session",
    "invoice",
    "refund",
    "label",
    "parcel",
    "query",
    "index",
    "image",
    "thumb",
    "email",
    "sms",
    "event",
    "report",
    "ledger",
    "quote",
    "review",
    "rating",
    "coupon",
    "wallet",
)
RESOURCES = (
    "items",
    "orders",
    "accounts",
    "profiles",
    "quotes",
    "prices",
    "events",
    "reports",
    "tokens",
    "sessions",
    "carts",
    "labels",
    "queries",
    "images",
    "messages",
    "batches",
    "exports",
    "ledgers",
    "refunds",
    "coupons",
    "reviews",
    "slots",
    "zones",
    "feeds",
)
FRONTENDS = 3
MAX_CALLERS = 4
CALLER_WINDOW = 120


@dataclass(frozen=True, slots=True)
class Shape:
    """Odd shapes added to the generated mesh (benchmarks at scale; tests/bench/bench_scale.py).

    Every default leaves the generated tree byte-identical to a call without `shape`."""

    namespaces: int = len(NAMESPACES)
    """How many namespaces the services are spread over (beyond 10: `ns-000`, `ns-001`, ...)."""
    hub: bool = False
    """Add service `hub` that every other service calls; its AccessPolicy has one rule whose
    `from:` names every caller (a policy naming every service as a source)."""
    hub_rule_per_caller: bool = False
    """Add service `hub` that every other service calls; its AccessPolicy has one rule per
    caller, all with the same operation: deciding a call, or whether a rule covers another,
    must not scan every rule of the hub for each caller."""
    big_policy_rules: int = 0
    """Add service `vault`, called by the first service, whose AccessPolicy has this many
    allow rules (distinct paths, all from that caller)."""
    chain_depth: int = 0
    """Add a call chain `link-000 -> link-001 -> ...` of this many services in namespace
    `chains`, every hop retrying (MC603's search)."""
    shared_identity: int = 0
    """The first this-many services all run as identity `shared-sa` (MC301)."""
    versions: int = 0
    """Add service `multi` with this many versions and a progressive Rollout."""
    rollout_steps: int = 0
    """How many steps `multi`'s Rollout has (at least 1 when `versions` is set)."""


@dataclass(slots=True)
class MeshStats:
    """What was written: the figures the benchmark prints."""

    root: Path
    files: int = 0
    bytes: int = 0
    services: int = 0
    rules: int = 0
    rollouts: int = 0
    resilience: int = 0
    namespaces: int = 0
    service_files: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Service:
    index: int
    name: str
    namespace: str
    versions: int
    calls: list[int] = field(default_factory=list)
    callers: list[int] = field(default_factory=list)
    retries: bool = False
    rollout: str | None = None
    resilience: bool = False
    identity: str = ""

    def ref_from(self, namespace: str) -> str:
        """How a document in `namespace` refers to this service."""
        return self.name if namespace == self.namespace else f"{self.namespace}/{self.name}"

    @property
    def file(self) -> str:
        return f"{self.namespace}/{self.name}.yaml"


def _namespace_names(count: int) -> tuple[str, ...]:
    if count <= len(NAMESPACES):
        return NAMESPACES[: max(1, count)]
    return tuple(f"ns-{index:03d}" for index in range(count))


def _plan_services(count: int, rng: random.Random, shape: Shape) -> list[_Service]:
    """Names, namespaces, the call DAG and which services get rollouts and resilience."""
    namespaces = _namespace_names(shape.namespaces)
    services = []
    for index in range(count):
        namespace = namespaces[index * len(namespaces) // count]
        name = f"{NOUNS[index % len(NOUNS)]}-{index:04d}"
        services.append(_Service(index, name, namespace, versions=1 + (rng.random() < 0.3)))
    for index in range(FRONTENDS, count):
        low = max(0, index - CALLER_WINDOW)
        callers = rng.sample(range(low, index), k=min(index - low, rng.randint(1, MAX_CALLERS)))
        for caller in sorted(callers):
            services[caller].calls.append(index)
            services[index].callers.append(caller)
    if shape.hub or shape.hub_rule_per_caller:
        hub = _Service(count, "hub", namespaces[0], versions=1)
        for service in services:
            service.calls.append(hub.index)
            hub.callers.append(service.index)
        services.append(hub)
    for service in services[: shape.shared_identity]:
        service.identity = "shared-sa"
    for service in services:
        leaf = not service.calls
        # a service that calls others turns Istio's default retries off: leaves retry (MC603)
        service.resilience = rng.random() < 0.35 or not leaf
        service.retries = service.resilience and leaf
        if service.versions > 1:
            kind = "steps" if rng.random() < 0.3 else "split"
            # front ends are called through the ingress gateway, to which the bench Mesh
            # binds no split (MC232): their versions run without a Rollout
            service.rollout = kind if service.callers else None
    return services


def _operations(server: _Service, budget: int, rng: random.Random) -> list[tuple[str, str]]:
    """Distinct (method, path) pairs for one server; no pair covers another."""
    resources = rng.sample(RESOURCES, k=min(budget, len(RESOURCES)))
    ops = []
    for resource in resources:
        if server.retries or rng.random() < 0.6:
            ops.append(("GET", f"/api/{resource}/*"))
        else:
            ops.append(("POST", f"/api/{resource}"))
    return ops


def _service_doc(service: _Service, services: list[_Service]) -> str:
    versions = "\n".join(
        f"    v{v}: {{labels: {{version: v{v}}}}}" for v in range(1, service.versions + 1)
    )
    calls = ", ".join(services[c].ref_from(service.namespace) for c in service.calls)
    return (
        "apiVersion: meshc/v1\n"
        "kind: Service\n"
        "metadata:\n"
        f"  name: {service.name}\n"
        f"  namespace: {service.namespace}\n"
        "  labels: {team: " + service.namespace + "}\n"
        "spec:\n"
        f"  identity: {service.identity or service.name + '-sa'}\n"
        "  ports:\n"
        "  - {name: http, port: 8080, targetPort: 8080, protocol: http}\n"
        "  versions:\n"
        f"{versions}\n" + (f"  calls: [{calls}]\n" if calls else "")
    )


def _policy_doc(
    service: _Service, services: list[_Service], *, rules: int, rng: random.Random
) -> tuple[str, int]:
    callers = [services[c].ref_from(service.namespace) for c in service.callers]
    sources = [f"{{service: {ref}}}" for ref in callers] or ["{ingressGateway: true}"]
    lines = []
    count = 0
    for position, source in enumerate(sources):
        share = rules // len(sources) + (position < rules % len(sources))
        for method, path in _operations(service, max(1, share), rng):
            lines.append(
                f'  - from: [{source}]\n    to: {{methods: [{method}], paths: ["{path}"]}}\n'
            )
            count += 1
    text = (
        "apiVersion: meshc/v1\n"
        "kind: AccessPolicy\n"
        "metadata:\n"
        f"  name: {service.name}\n"
        f"  namespace: {service.namespace}\n"
        "spec:\n"
        f"  service: {service.name}\n"
        "  mode: enforce\n"
        "  rules:\n" + "".join(lines)
    )
    return text, count


def _rollout_doc(service: _Service) -> str:
    head = (
        "apiVersion: meshc/v1\n"
        "kind: Rollout\n"
        "metadata:\n"
        f"  name: {service.name}\n"
        f"  namespace: {service.namespace}\n"
        "spec:\n"
        f"  service: {service.name}\n"
        "  stable: v1\n"
    )
    if service.rollout == "steps":
        return head + (
            "  canary: v2\n"
            "  steps:\n"
            "  - {weight: 10, pause: 10m}\n"
            "  - weight: 50\n"
            "    pause: 30m\n"
            "    analysis: {successRate: 99.5, maxLatency: 250ms, interval: 1m}\n"
            "  - {weight: 100}\n"
        )
    return head + (
        "  split: {v1: 90, v2: 10}\n"
        "  match:\n"
        "  - headers: {x-canary: {exact: always}}\n"
        "    version: v2\n"
    )


def _resilience_doc(service: _Service) -> str:
    retries = (
        "  retries: {attempts: 2, perTryTimeout: 500ms, retryOn: [5xx, reset, connect-failure]}\n"
        if service.retries
        else "  retries: {attempts: 0}\n"
        if service.calls
        else ""
    )
    return (
        "apiVersion: meshc/v1\n"
        "kind: Resilience\n"
        "metadata:\n"
        f"  name: {service.name}\n"
        f"  namespace: {service.namespace}\n"
        "spec:\n"
        f"  service: {service.name}\n"
        "  timeout: 2s\n" + retries + "  circuitBreaker:\n"
        "    maxConnections: 200\n"
        "    maxPendingRequests: 50\n"
        "    consecutive5xx: 5\n"
        "    interval: 10s\n"
        "    baseEjectionTime: 30s\n"
        "    maxEjectionPercent: 50\n"
        "  loadBalancer: least-request\n"
    )


MESH_DOC = """\
# A synthetic mesh written by tests/bench/generate.py.
apiVersion: meshc/v1
kind: Mesh
metadata:
  name: bench-mesh
spec:
  trustDomain: bench.local
  mtls: {mode: strict}
  defaultAction: deny
  networkPolicy: {enabled: true}
  monitoringNamespace: monitoring
"""


def generate_mesh(
    root: Path,
    *,
    services: int,
    rules_per_service: int = 10,
    seed: int = 0,
    shape: Shape | None = None,
) -> MeshStats:
    """Write the synthetic policy tree under `root` (created if needed) and describe it."""
    shape = shape or Shape()
    rng = random.Random(seed)
    planned = _plan_services(services, rng, shape)
    stats = MeshStats(root=root, services=len(planned))
    root.mkdir(parents=True, exist_ok=True)
    _write(root, "mesh.yaml", MESH_DOC, stats)
    for service in planned:
        if shape.hub_rule_per_caller and service is planned[-1]:
            policy, count = _hub_rules_doc(service, planned)
        elif shape.hub and service is planned[-1]:
            policy, count = _hub_policy_doc(service, planned)
        else:
            policy, count = _policy_doc(service, planned, rules=rules_per_service, rng=rng)
        parts = [_service_doc(service, planned), policy]
        if service.rollout:
            parts.append(_rollout_doc(service))
            stats.rollouts += 1
        if service.resilience:
            parts.append(_resilience_doc(service))
            stats.resilience += 1
        stats.rules += count
        _write(root, service.file, "---\n".join(parts), stats)
        stats.service_files.append(service.file)
    stats.namespaces = len({s.namespace for s in planned})
    _write_odd_shapes(root, shape, planned[0], stats)
    return stats


def _hub_policy_doc(hub: _Service, services: list[_Service]) -> tuple[str, int]:
    """One allow rule whose `from:` names every caller of the hub."""
    sources = "".join(
        f"    - service: {services[c].ref_from(hub.namespace)}\n" for c in hub.callers
    )
    text = (
        "apiVersion: meshc/v1\n"
        "kind: AccessPolicy\n"
        "metadata:\n"
        f"  name: {hub.name}\n"
        f"  namespace: {hub.namespace}\n"
        "spec:\n"
        f"  service: {hub.name}\n"
        "  mode: enforce\n"
        "  rules:\n"
        "  - from:\n" + sources + '    to: {methods: [GET], paths: ["/api/hub/*"]}\n'
    )
    return text, 1


def _hub_rules_doc(hub: _Service, services: list[_Service]) -> tuple[str, int]:
    """One allow rule per caller of the hub, all for the same operation (no rule covers
    another: their sources differ; every rule is used)."""
    rules = "".join(
        f"  - from: [{{service: {services[c].ref_from(hub.namespace)}}}]\n"
        '    to: {methods: [GET], paths: ["/api/hub/*"]}\n'
        for c in hub.callers
    )
    text = (
        "apiVersion: meshc/v1\n"
        "kind: AccessPolicy\n"
        "metadata:\n"
        f"  name: {hub.name}\n"
        f"  namespace: {hub.namespace}\n"
        "spec:\n"
        f"  service: {hub.name}\n"
        "  mode: enforce\n"
        "  rules:\n" + rules
    )
    return text, len(hub.callers)


def _plain_service(name: str, namespace: str, *, calls: str = "", versions: int = 1) -> str:
    listed = "\n".join(f"    v{v}: {{labels: {{version: v{v}}}}}" for v in range(1, versions + 1))
    return (
        "apiVersion: meshc/v1\nkind: Service\nmetadata:\n"
        f"  name: {name}\n  namespace: {namespace}\nspec:\n  identity: {name}-sa\n"
        "  ports:\n  - {name: http, port: 8080, targetPort: 8080, protocol: http}\n"
        f"  versions:\n{listed}\n" + (f"  calls: [{calls}]\n" if calls else "")
    )


def _plain_policy(name: str, namespace: str, rules: list[tuple[str, str]]) -> str:
    """An AccessPolicy of GET rules, each (source, path)."""
    body = "".join(
        f'  - from: [{source}]\n    to: {{methods: [GET], paths: ["{path}"]}}\n'
        for source, path in rules
    )
    return (
        "apiVersion: meshc/v1\nkind: AccessPolicy\nmetadata:\n"
        f"  name: {name}\n  namespace: {namespace}\nspec:\n  service: {name}\n"
        "  mode: enforce\n  rules:\n" + body
    )


def _retrying(name: str, namespace: str) -> str:
    return (
        "apiVersion: meshc/v1\nkind: Resilience\nmetadata:\n"
        f"  name: {name}\n  namespace: {namespace}\nspec:\n  service: {name}\n"
        "  timeout: 2s\n  retries: {attempts: 2, perTryTimeout: 500ms, retryOn: [5xx]}\n"
    )


def _write_odd_shapes(root: Path, shape: Shape, first: _Service, stats: MeshStats) -> None:
    """The extra services of `shape` (none by default), each in its own file."""
    caller = f"{{service: {first.namespace}/{first.name}}}"
    if shape.big_policy_rules:
        rules = [(caller, f"/api/r{index:05d}/*") for index in range(shape.big_policy_rules)]
        # the first service's file is rewritten with a call into the vault
        text = (root / first.file).read_text()
        old = f"  identity: {first.identity or first.name + '-sa'}\n"
        calls_line = next((ln for ln in text.splitlines() if ln.startswith("  calls: [")), None)
        if calls_line is None:
            text = text.replace(old, old + "  calls: [odd/vault]\n", 1)
        else:
            text = text.replace(calls_line, calls_line[:-1] + ", odd/vault]", 1)
        (root / first.file).write_text(text)
        parts = [_plain_service("vault", "odd"), _plain_policy("vault", "odd", rules)]
        _add(root, "odd/vault.yaml", parts, stats, rules=len(rules))
    for index in range(shape.chain_depth):
        name = f"link-{index:03d}"
        following = f"link-{index + 1:03d}" if index + 1 < shape.chain_depth else ""
        source = f"{{service: link-{index - 1:03d}}}" if index else "{ingressGateway: true}"
        parts = [
            _plain_service(name, "chains", calls=following),
            _plain_policy(name, "chains", [(source, "/api/link/*")]),
            _retrying(name, "chains"),
        ]
        _add(root, f"chains/{name}.yaml", parts, stats, rules=1)
    if shape.versions:
        steps = max(1, shape.rollout_steps)
        weights = [max(1, 100 * (step + 1) // steps) for step in range(steps)]
        rollout = (
            "apiVersion: meshc/v1\nkind: Rollout\nmetadata:\n  name: multi\n"
            "  namespace: odd\nspec:\n  service: multi\n  stable: v1\n  canary: v2\n"
            "  steps:\n" + "".join(f"  - {{weight: {w}, pause: 1m}}\n" for w in weights)
        )
        parts = [
            _plain_service("multi", "odd", versions=shape.versions),
            _plain_policy("multi", "odd", [("{ingressGateway: true}", "/api/multi/*")]),
            rollout,
        ]
        _add(root, "odd/multi.yaml", parts, stats, rules=1)
        stats.rollouts += 1


def _add(root: Path, relative: str, parts: list[str], stats: MeshStats, *, rules: int) -> None:
    _write(root, relative, "---\n".join(parts), stats)
    stats.service_files.append(relative)
    stats.services += 1
    stats.rules += rules


def _write(root: Path, relative: str, text: str, stats: MeshStats) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(data)
    stats.files += 1
    stats.bytes += len(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic meshc policy tree.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rules-per-service", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stats = generate_mesh(
        args.directory,
        services=args.services,
        rules_per_service=args.rules_per_service,
        seed=args.seed,
    )
    print(
        f"wrote {stats.files} files, {stats.bytes:,} bytes: {stats.services} services in "
        f"{stats.namespaces} namespaces, {stats.rules} access rules, {stats.rollouts} rollouts, "
        f"{stats.resilience} resilience policies"
    )


if __name__ == "__main__":
    main()
