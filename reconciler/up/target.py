"""The local mesh as a reconcile target: the xds control plane plus the processes behind it.

`render` places the compiled services (ports kept for nodes that already run, allocated for
new ones) and lowers them to one snapshot per node with the Envoy backend. `push` hands the
snapshots to the control plane, then brings the processes in line: a demo backend and an
Envoy for each new node, both stopped for a node the revision removed. `confirm` waits
until every node's Envoy is connected and has ACKed or NACKed its snapshot. Each Envoy's
certificate for the xDS connection sits in its bootstrap, read once: past half its
lifetime it is re-issued and that Envoy restarted (`keep_credentials_fresh`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiohttp import web
from cryptography import x509

from compiler.api import Compilation
from compiler.lower.envoy.snapshot import Snapshot
from compiler.model.mesh import MeshSnapshot
from compiler.model.placement import InstancePlacement
from reconciler.ca.service import CAService
from reconciler.errors import MeshdError
from reconciler.loop import Acceptance, Pushed, utc_now
from reconciler.targets.xds import Versions, changed_nodes, snapshot_versions
from reconciler.up.backend import DemoBackend, start_backend
from reconciler.up.credentials import control_plane_id
from reconciler.up.lowering import lower_snapshots
from reconciler.up.ports import LOCALHOST, LocalMesh, PortError, allocate, reuse
from reconciler.up.proxies import ProxySpec, Supervisor
from reconciler.up.runstate import ServiceInfo
from reconciler.xds.bootstrap import XdsClientFiles, bootstrap, write_client_files
from reconciler.xds.server import XdsServer


@dataclass(frozen=True, slots=True)
class Desired:
    """A revision as the local mesh serves it."""

    mesh: LocalMesh
    snapshots: Mapping[str, Snapshot]
    services: Mapping[str, ServiceInfo]
    trust_domain: str
    findings: tuple[str, ...] = ()
    """What the Envoy backend could not lower (reported, never silently dropped)."""


@dataclass(slots=True)
class RunningNode:
    instance: InstancePlacement
    backend: DemoBackend
    runner: web.AppRunner


@dataclass(slots=True)
class LocalMeshTarget:
    """Owns the control plane's snapshots and every node's processes."""

    xds: XdsServer
    xds_port: int
    ca: CAService
    supervisor: Supervisor
    workdir: Path
    on_change: Callable[[Desired], None] = lambda desired: None
    """Called after each push (publishes the run state)."""
    warn: Callable[[str], None] = lambda line: None
    current: Desired | None = None
    nodes: dict[str, RunningNode] = field(default_factory=dict)
    versions: Versions = field(default_factory=dict)
    renew_at: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    """Node → (its SPIFFE ID, when its xDS client certificate is due for renewal)."""

    @property
    def name(self) -> str:
        return f"xds (local mesh, control plane on {LOCALHOST}:{self.xds_port})"

    def render(self, compilation: Compilation) -> Desired:
        model = compilation.model
        if not model.services:
            raise MeshdError(
                "the revision declares no Service; the running workloads are kept (a folder "
                "emptied by a checkout or a move is likelier than a mesh meant to be empty)"
            )
        mesh = allocate(model) if self.current is None else reuse(self.current.mesh, model)
        snapshots, findings = lower_snapshots(compilation, mesh.placement)
        return Desired(
            mesh=mesh,
            snapshots=snapshots,
            services=service_infos(model),
            trust_domain=model.settings.trust_domain,
            findings=findings,
        )

    async def push(self, desired: Desired, *, revision: str) -> Pushed:
        previous = self.current.findings if self.current is not None else ()
        for finding in desired.findings:
            if finding not in previous:
                self.warn(f"envoy backend: {finding}")
        changed = self._count_changes(desired.snapshots)
        generation = self.xds.set_snapshots(desired.snapshots)
        self.current = desired  # served now; a node that fails to start is retried next pass
        gone = [node for node in self.nodes if node not in desired.mesh.placement]
        for node_id in gone:
            await self._stop_node(node_id)
        for node_id, instance in sorted(desired.mesh.placement.items()):
            if node_id not in self.nodes:
                await self._start_node(desired, node_id, instance)
        self.on_change(desired)
        return Pushed(generation=generation, changed=changed)

    async def confirm(self, pushed: Pushed, *, timeout: float) -> Acceptance:
        """Every node connected and answered (a new Envoy needs a moment to connect)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = max(0.0, deadline - loop.time())
            result = await self.xds.wait_acked(pushed.generation, timeout=left)
            if not result.disconnected or left <= 0:
                break
            await asyncio.sleep(min(0.05, left))
        return Acceptance(
            accepted=result.acked,
            rejected=dict(result.nacked),
            pending=tuple(sorted({*result.pending, *result.disconnected})),
        )

    def _count_changes(self, snapshots: Mapping[str, Snapshot]) -> int:
        before, self.versions = self.versions, snapshot_versions(snapshots)
        return changed_nodes(before, self.versions)

    async def _start_node(
        self, desired: Desired, node_id: str, instance: InstancePlacement
    ) -> None:
        backend = DemoBackend(instance.service.name, instance.version, instance.index)
        ports = [address.port for address in instance.app.values()]
        try:
            runner = await start_backend(backend, LOCALHOST, ports)
        except OSError as exc:
            raise PortError(
                f"demo backend of {node_id}: cannot listen on {LOCALHOST}:{ports} "
                f"({exc.strerror}); something else took the port, run `meshd up` again"
            ) from None
        try:
            await self._start_envoy(desired, node_id, instance)
        except BaseException:
            await runner.cleanup()  # the next pass starts the node again, whole
            raise
        self.nodes[node_id] = RunningNode(instance, backend, runner)

    async def _start_envoy(
        self, desired: Desired, node_id: str, instance: InstancePlacement
    ) -> None:
        snapshot = desired.snapshots.get(node_id)
        if snapshot is None:
            raise MeshdError(f"{node_id}: the Envoy backend built no snapshot for this node")
        files = self._write_credential(node_id, snapshot.identity)
        admin = desired.mesh.admin[node_id]
        config = bootstrap(
            node_id=node_id,
            cluster=instance.cluster,
            xds_address=LOCALHOST,
            xds_port=self.xds_port,
            control_plane_identity=control_plane_id(desired.trust_domain),
            files=files,
            admin_port=admin.port,
        )
        try:
            await self.supervisor.start(ProxySpec(node_id, instance.cluster, admin, config))
        except OSError as exc:
            raise MeshdError(f"envoy {node_id}: cannot start ({exc.strerror})") from None

    def _write_credential(self, node_id: str, identity: str) -> XdsClientFiles:
        """Issue the node's certificate for its xDS connection and note when to renew it
        (at half its lifetime, as the xds target renews the SDS certificates)."""
        files = write_client_files(
            self.ca, utc_now(), identity, self.workdir / "credentials" / _safe(node_id)
        )
        leaf = x509.load_pem_x509_certificate(files.certificate_chain.read_bytes())
        lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        self.renew_at[node_id] = (identity, leaf.not_valid_before_utc + lifetime / 2)
        return files

    async def renew_credentials(self, now: datetime) -> list[str]:
        """Re-issue every xDS client certificate past its half-life, and restart its Envoy:
        a certificate in the bootstrap is read once, at start."""
        renewed = []
        for node_id, (identity, due) in sorted(self.renew_at.items()):
            if now >= due and node_id in self.supervisor.proxies:
                self._write_credential(node_id, identity)
                await self.supervisor.replace(node_id)
                renewed.append(node_id)
        return renewed

    async def keep_credentials_fresh(self, *, check_every: float = 60.0) -> None:
        """Run until cancelled: renew what is due, report it."""
        while True:
            upcoming = min((due for _, due in self.renew_at.values()), default=None)
            wait = check_every
            if upcoming is not None:
                wait = min(check_every, max(0.0, (upcoming - utc_now()).total_seconds()))
            await asyncio.sleep(wait)
            try:
                renewed = await self.renew_credentials(utc_now())
            except (MeshdError, OSError) as exc:
                self.warn(f"cannot renew an xDS client certificate ({exc}); retrying")
                await asyncio.sleep(check_every)
                continue
            for node_id in renewed:
                self.warn(f"envoy {node_id} restarted with a renewed xDS client certificate")

    async def _stop_node(self, node_id: str) -> None:
        self.renew_at.pop(node_id, None)
        node = self.nodes.pop(node_id)
        await self.supervisor.stop(node_id)
        await node.runner.cleanup()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.workdir / "credentials" / _safe(node_id))

    async def close(self) -> None:
        """Stop every Envoy, then the backends (the control plane is the caller's)."""
        await self.supervisor.stop_all()
        for node in self.nodes.values():
            await node.runner.cleanup()
        self.nodes.clear()


def service_infos(model: MeshSnapshot) -> dict[str, ServiceInfo]:
    settings = model.settings
    infos: dict[str, ServiceInfo] = {}
    for key, view in sorted(model.services.items()):
        infos[str(key)] = ServiceInfo(
            host=f"{key.name}.{key.namespace}.svc.{settings.cluster_domain}",
            ports={int(p.port): str(p.protocol or "http") for p in view.spec.ports},
            policies=tuple(
                f"{p.model.metadata.namespace or key.namespace}/{p.model.metadata.name}"
                for p in view.policies
            ),
            calls=tuple(str(callee) for callee in view.calls),
        )
    return infos


def _safe(node_id: str) -> str:
    return node_id.replace("~", "_")
