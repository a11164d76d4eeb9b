"""A synthetic, realistic and lint-clean service mesh for benchmarks.

`generate_mesh(root, services=1000)` writes one Mesh and one file per service (its
Service, its AccessPolicy and, for some, a Rollout and a Resilience), spread across a
handful of namespaces. Every service that calls others has a Resilience turning Istio's
default retries off (`attempts: 0`), so only leaves retry and chains stay in the MC603
budget. The call graph is a DAG (a service only calls services with a
higher index), every declared call is allowed by the server, and every allow rule is used
by a declared call, so the tree lints clean at warning level while still exercising the
cross-file resolution and the graph rules. Deterministic for a given seed.

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

    def ref_from(self, namespace: str) -> str:
        """How a document in `namespace` refers to this service."""
        return self.name if namespace == self.namespace else f"{self.namespace}/{self.name}"

    @property
    def file(self) -> str:
        return f"{self.namespace}/{self.name}.yaml"


def _plan_services(count: int, rng: random.Random) -> list[_Service]:
    """Names, namespaces, the call DAG and which services get rollouts and resilience."""
    services = []
    for index in range(count):
        namespace = NAMESPACES[index * len(NAMESPACES) // count]
        name = f"{NOUNS[index % len(NOUNS)]}-{index:04d}"
        services.append(_Service(index, name, namespace, versions=1 + (rng.random() < 0.3)))
    for index in range(FRONTENDS, count):
        low = max(0, index - CALLER_WINDOW)
        callers = rng.sample(range(low, index), k=min(index - low, rng.randint(1, MAX_CALLERS)))
        for caller in sorted(callers):
            services[caller].calls.append(index)
            services[index].callers.append(caller)
    for service in services:
        leaf = not service.calls
        # a service that calls others turns Istio's default retries off: leaves retry (MC603)
        service.resilience = rng.random() < 0.35 or not leaf
        service.retries = service.resilience and leaf
        if service.versions > 1:
            service.rollout = "steps" if rng.random() < 0.3 else "split"
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
        f"  identity: {service.name}-sa\n"
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
    root: Path, *, services: int, rules_per_service: int = 10, seed: int = 0
) -> MeshStats:
    """Write the synthetic policy tree under `root` (created if needed) and describe it."""
    rng = random.Random(seed)
    planned = _plan_services(services, rng)
    stats = MeshStats(root=root, services=services)
    root.mkdir(parents=True, exist_ok=True)
    _write(root, "mesh.yaml", MESH_DOC, stats)
    for service in planned:
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
    return stats


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
