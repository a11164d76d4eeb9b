"""xDS benchmark: push→ACK latency and convergence on real Envoys, scoped vs unscoped config.

Run: `.venv/bin/python -m tests.bench.bench_xds [--proxies 1,10,50] [--services 100,1000]`

Prints, in one run:
  * push→ACK: the in-process control plane (`reconciler.xds.XdsServer`) serves compiled
    snapshots of a generated mesh (tests/bench/generate.py) to 1, 10 and 50 real Envoys;
    then, --pushes times, every proxy's routes change at once (a response header names the
    push): convergence is the wall time from `set_snapshots` until every proxy ACKed
    (`wait_acked`), and each proxy's push→ACK under that fan-out is printed too; then one
    proxy's routes change at a time, in turn: push→ACK is the control plane's own
    `acked_at - pushed_at` of that RDS push. Median and p99 against the targets (median
    push→ACK <= 5 ms; 50 Envoys converge <= 250 ms) with PASS/MISS;
  * config bytes per proxy for the generated 100- and 1,000-service meshes: *scoped* is
    the mean over the mesh's proxies of their snapshots' serialised size (what meshc sends:
    only the services each declares in `calls:`); *unscoped* is the snapshot of one extra
    workload that calls every service — every service's clusters, endpoints and routes, as
    Istio sends each proxy without a Sidecar. And `server.memory_allocated` of a real Envoy
    holding each (the snapshot as a static bootstrap, `tests/lower/envoy/support.py`).
    Targets at 1,000 services: scoped >= 50x fewer bytes and >= 15x less memory.
Not a pytest test (tests/bench is excluded from collection).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.config.route.v3.route_pb2 import RouteConfiguration

from compiler.api import Compilation, compile_tree, load_tree
from compiler.lower.envoy import envoy_placement, node_output
from compiler.lower.envoy.snapshot import ROUTE, Snapshot
from compiler.model.mesh import MeshModel
from compiler.model.placement import Address, InstancePlacement, Placement
from reconciler.ca.service import CAService
from reconciler.xds import XdsServer, bootstrap, server_tls_from_ca, write_client_files
from reconciler.xds.status import ProxyStatus
from tests.bench.generate import generate_mesh
from tests.e2e.mesh import new_store
from tests.lower.envoy.support import TestAuthority, static_bootstrap
from tests.xds.support import envoy_path, run_envoy

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LOCAL = "127.0.0.1"
HUB = "everything"
HUB_NAMESPACE = "bench"
TARGET_PUSH_ACK_MS = 5.0
TARGET_CONVERGE_50_MS = 250.0
TARGET_BYTES_RATIO = 50.0
TARGET_MEMORY_RATIO = 15.0
ENVOY_SETTLE_S = 3.0
"""How long an Envoy holding a static config runs before its memory is read."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return int(sock.getsockname()[1])


class Ports:
    """Addresses for a placement: ports below the kernel's ephemeral range that are free
    now for the proxies that will run (an ephemeral port handed out unbound can be taken
    by any outgoing connection before Envoy binds it — 50 Envoys make many), and distinct
    made-up ones for the rest (endpoints nobody connects to)."""

    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.next_live = 12000
        self.next = 20000

    def address(self, node_id: str) -> Address:
        if node_id in self.live:
            while not _bindable(self.next_live):
                self.next_live += 1
            self.next_live += 1
            return Address(LOCAL, self.next_live - 1)
        self.next = self.next + 1 if self.next < 60000 else 20000
        return Address(LOCAL, self.next)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOCAL, port))
        except OSError:
            return False
        return True


def placement_of(model: MeshModel, live: set[str]) -> Placement:
    """One instance per service version (or one unversioned)."""
    ports = Ports(live)
    out: dict[str, InstancePlacement] = {}
    for key in sorted(model.services):
        view = model.services[key]
        for version in sorted(view.spec.versions or {}) or [""]:
            node = InstancePlacement(key, version, 0).node_id
            out[node] = InstancePlacement(
                service=key,
                version=version,
                index=0,
                inbound={int(p.port): ports.address(node) for p in view.spec.ports},
                app={int(p.port): ports.address(node) for p in view.spec.ports},
                outbound=ports.address(node) if view.calls else None,
            )
    return out


def compiled(root: Path, live: set[str] | None = None) -> Compilation:
    tree = load_tree(root)
    first = compile_tree(tree, now=NOW)
    assert first.ok, [f"{d.span}: {d.message}" for d in first.blocking()[:5]]
    chosen = live if live is not None else set()
    return compile_tree(
        tree, now=NOW, session=first.session, placement=placement_of(first.model, chosen)
    )


def snapshot_of(compilation: Compilation, node_id: str) -> Snapshot:
    output = compilation.engine().query(node_output, node_id)
    assert output is not None, node_id
    return output.snapshot


def config_bytes(snapshot: Snapshot) -> int:
    return sum(
        len(resource.SerializeToString(deterministic=True))
        for resources in snapshot.resources.values()
        for resource in resources.values()
    )


# --- push→ACK and convergence ------------------------------------------------------------


def with_push_header(snapshot: Snapshot, push: int) -> Snapshot:
    """The snapshot with every route table adding `x-bench-push: <push>` to responses."""
    routes: dict[str, RouteConfiguration] = {}
    for name, resource in snapshot.resources.get(ROUTE, {}).items():
        changed = RouteConfiguration()
        changed.CopyFrom(resource)
        changed.response_headers_to_add.append(
            HeaderValueOption(header=HeaderValue(key="x-bench-push", value=str(push)))
        )
        routes[name] = changed
    resources = {**snapshot.resources, ROUTE: routes}
    return Snapshot(
        snapshot.node_id, snapshot.cluster, snapshot.identity, resources, snapshot.secrets
    )


@dataclass(slots=True)
class PushFigures:
    proxies: int
    push_ack_ms: list[float] = field(default_factory=list)
    """One proxy's routes changed, the others not."""
    fan_out_ack_ms: list[float] = field(default_factory=list)
    """Every proxy's routes changed at once: each one's push→ACK."""
    converge_ms: list[float] = field(default_factory=list)


def rds_latency_ms(proxy: ProxyStatus) -> float:
    """The control plane's own record of its last RDS push to `proxy` and the ACK."""
    rds = proxy.types["RDS"]
    assert rds.pushed_at is not None and rds.acked_at is not None
    return (rds.acked_at - rds.pushed_at).total_seconds() * 1000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure_pushes(
    snapshots: Mapping[str, Snapshot], ca: CAService, scratch: Path, pushes: int
) -> PushFigures:
    figures = PushFigures(len(snapshots))
    server = XdsServer(ca)
    trust_domain = next(iter(snapshots.values())).identity.split("/")[2]
    control_plane = f"spiffe://{trust_domain}/ns/meshd/sa/control-plane"
    tls = server_tls_from_ca(ca, datetime.now(UTC), control_plane)
    port = await server.start(LOCAL, 0, tls)
    try:
        with contextlib.ExitStack() as envoys:
            for node_id, snapshot in snapshots.items():
                files = write_client_files(
                    ca, datetime.now(UTC), snapshot.identity, scratch / node_id
                )
                config = bootstrap(
                    node_id=node_id,
                    cluster=snapshot.cluster,
                    xds_address=LOCAL,
                    xds_port=port,
                    control_plane_identity=control_plane,
                    files=files,
                    admin_port=0,
                )
                envoys.enter_context(run_envoy(config, scratch / f"{node_id}-envoy", timeout=120))
            first = server.set_snapshots(dict(snapshots))
            started = await server.wait_acked(first, timeout=300, wait_for_connect=True)
            assert not started.nacked and len(started.acked) == len(snapshots), started
            current = dict(snapshots)
            for push in range(1, pushes + 1):
                current = {n: with_push_header(s, push) for n, s in snapshots.items()}
                began = time.perf_counter()
                generation = server.set_snapshots(current)
                result = await server.wait_acked(generation, timeout=60)
                figures.converge_ms.append((time.perf_counter() - began) * 1000)
                assert not result.nacked and len(result.acked) == len(snapshots), result
                for proxy in server.status():
                    figures.fan_out_ack_ms.append(rds_latency_ms(proxy))
            # one proxy's change at a time, in turn: the latency of a push itself
            nodes = sorted(snapshots)
            for push in range(max(pushes, len(nodes))):
                node = nodes[push % len(nodes)]
                current = {**current, node: with_push_header(snapshots[node], pushes + 1 + push)}
                generation = server.set_snapshots(current)
                result = await server.wait_acked(generation, timeout=60)
                assert node in result.acked and not result.nacked, result
                proxy = next(p for p in server.status() if p.node_id == node)
                figures.push_ack_ms.append(rds_latency_ms(proxy))
    finally:
        await server.stop()
    return figures


def push_benchmark(proxy_counts: list[int], pushes: int, scratch: Path) -> list[PushFigures]:
    largest = max(proxy_counts)
    root = scratch / "push-mesh"
    generate_mesh(root, services=largest)
    model = compile_tree(load_tree(root), now=NOW).model
    every = placement_of(model, set())
    out: list[PushFigures] = []
    for count in proxy_counts:
        live = set(sorted(every)[:count])
        compilation = compiled(root, live)
        snapshots = {node: snapshot_of(compilation, node) for node in sorted(live)}
        ca = new_store(scratch / f"ca-{count}", model.settings.trust_domain)
        figures = asyncio.run(measure_pushes(snapshots, ca, scratch / f"push-{count}", pushes))
        out.append(figures)
        print(format_push(figures), flush=True)
    return out


def format_push(figures: PushFigures) -> str:
    ack = figures.push_ack_ms
    fan = figures.fan_out_ack_ms
    converge = figures.converge_ms
    return (
        f"  {figures.proxies:>3} Envoys: push→ACK median {statistics.median(ack):5.1f} ms, "
        f"p99 {percentile(ack, 0.99):5.1f} ms; all changed at once: each ACK median "
        f"{statistics.median(fan):5.1f} ms, convergence median "
        f"{statistics.median(converge):5.1f} ms, p99 {percentile(converge, 0.99):5.1f} ms"
    )


# --- scoped vs unscoped ----------------------------------------------------------------


def add_hub(root: Path, model: MeshModel) -> None:
    """A workload calling every service (what every proxy sees without a Sidecar). Its
    calls are denied by the servers' policies, which does not change the config it gets."""
    calls = ", ".join(str(key) for key in sorted(model.services))
    (root / "hub.yaml").write_text(
        "apiVersion: meshc/v1\nkind: Service\n"
        f"metadata: {{name: {HUB}, namespace: {HUB_NAMESPACE}}}\n"
        f"spec:\n  ports: [{{name: http, port: 8080, protocol: http}}]\n  calls: [{calls}]\n"
    )
    config = root / "meshc.yaml"
    assert not config.exists()
    config.write_text("disable: [MC407, MC409, MC603]\n")


def envoy_memory(snapshot: Snapshot, scratch: Path) -> int:
    """`server.memory_allocated` of a real Envoy holding the snapshot statically."""
    authority = TestAuthority()
    config = static_bootstrap(snapshot, authority.issue(snapshot.identity))
    admin = free_port()
    config["admin"] = {"address": {"socketAddress": {"address": LOCAL, "portValue": admin}}}
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"{snapshot.node_id}.json"
    path.write_text(json.dumps(config))
    log = (scratch / f"{snapshot.node_id}.log").open("wb")
    process = subprocess.Popen(
        [envoy_path(), "-c", str(path), "--disable-hot-restart", "--concurrency", "1",
         "-l", "error"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                url = f"http://{LOCAL}:{admin}/stats?filter=server.memory_allocated&format=json"
                with urllib.request.urlopen(url, timeout=2) as response:
                    stats = json.loads(response.read())["stats"]
                if _state(admin) == "LIVE":
                    break
            except OSError:
                pass
            assert process.poll() is None, (scratch / f"{snapshot.node_id}.log").read_text()
            assert time.monotonic() < deadline, "envoy did not start"
            time.sleep(0.2)
        time.sleep(ENVOY_SETTLE_S)
        with urllib.request.urlopen(url, timeout=2) as response:
            stats = json.loads(response.read())["stats"]
        return int(next(s["value"] for s in stats if s["name"] == "server.memory_allocated"))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _state(admin: int) -> str:
    with urllib.request.urlopen(f"http://{LOCAL}:{admin}/server_info", timeout=2) as response:
        return str(json.loads(response.read())["state"])


@dataclass(frozen=True, slots=True)
class ScopeFigures:
    services: int
    proxies: int
    scoped_bytes: float
    unscoped_bytes: int
    scoped_memory: int
    unscoped_memory: int


def scope_benchmark(services: int, scratch: Path) -> ScopeFigures:
    root = scratch / f"scope-{services}"
    generate_mesh(root, services=services)
    add_hub(root, compile_tree(load_tree(root), now=NOW).model)
    hub = f"{HUB}.{HUB_NAMESPACE}~~0"
    everything = compiled(root)
    every = sorted(n for n in everything.engine().query(envoy_placement) if n != hub)
    sizes = {n: config_bytes(snapshot_of(everything, n)) for n in every}
    mean = statistics.fmean(sizes.values())
    # memory is read on the proxy whose config size is nearest the mean
    typical = min(every, key=lambda n: (abs(sizes[n] - mean), n))
    compilation = compiled(root, {hub, typical})
    hub_snapshot = snapshot_of(compilation, hub)
    scoped_memory = envoy_memory(snapshot_of(compilation, typical), scratch / "memory")
    unscoped_memory = envoy_memory(hub_snapshot, scratch / "memory")
    print(f"  memory read on {typical} ({sizes[typical]} bytes; mean {mean:.0f})", flush=True)
    return ScopeFigures(
        services, len(every), mean, config_bytes(hub_snapshot), scoped_memory, unscoped_memory
    )


def format_scope(f: ScopeFigures) -> str:
    return (
        f"  {f.services:>5} services ({f.proxies} proxies): config bytes per proxy scoped "
        f"{f.scoped_bytes / 1024:8.1f} KiB, unscoped {f.unscoped_bytes / 1024:9.1f} KiB "
        f"({f.unscoped_bytes / f.scoped_bytes:6.1f}x); server.memory_allocated scoped "
        f"{f.scoped_memory / 2**20:6.1f} MiB, unscoped {f.unscoped_memory / 2**20:7.1f} MiB "
        f"({f.unscoped_memory / f.scoped_memory:5.1f}x)"
    )


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", default="1,10,50")
    parser.add_argument("--services", default="100,1000")
    parser.add_argument("--pushes", type=int, default=20)
    args = parser.parse_args(argv)
    proxy_counts = [int(n) for n in args.proxies.split(",") if n]
    service_counts = [int(n) for n in args.services.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="bench-xds-") as directory:
        scratch = Path(directory)
        print("push→ACK and convergence (real Envoys, in-process control plane):")
        pushes = push_benchmark(proxy_counts, args.pushes, scratch) if proxy_counts else []
        print("scoped vs unscoped configuration:")
        scopes = []
        for count in service_counts:
            scopes.append(scope_benchmark(count, scratch))
            print(format_scope(scopes[-1]), flush=True)
    print("targets:")
    for figures in pushes:
        ack = statistics.median(figures.push_ack_ms)
        passed = verdict(ack <= TARGET_PUSH_ACK_MS)
        print(f"  {figures.proxies} Envoys: median push→ACK {ack:.1f} ms <= 5 ms: {passed}")
    if pushes:
        fifty = [f for f in pushes if f.proxies == 50]
        if fifty:
            converge = statistics.median(fifty[0].converge_ms)
            print(
                f"  50 Envoys converge {converge:.0f} ms <= {TARGET_CONVERGE_50_MS:.0f} ms: "
                f"{verdict(converge <= TARGET_CONVERGE_50_MS)}"
            )
    for f in scopes:
        if f.services == 1000:
            bytes_ratio = f.unscoped_bytes / f.scoped_bytes
            memory_ratio = f.unscoped_memory / f.scoped_memory
            print(
                f"  1,000 services: {bytes_ratio:.0f}x fewer bytes >= {TARGET_BYTES_RATIO:.0f}x: "
                f"{verdict(bytes_ratio >= TARGET_BYTES_RATIO)}; {memory_ratio:.1f}x less memory "
                f">= {TARGET_MEMORY_RATIO:.0f}x: {verdict(memory_ratio >= TARGET_MEMORY_RATIO)}"
            )
    print(
        "  reproduce: .venv/bin/python -m tests.bench.bench_xds "
        f"--proxies {args.proxies} --services {args.services} --pushes {args.pushes}"
    )


if __name__ == "__main__":
    main()
