"""The xds target of `meshd run`: the embedded control plane serving Envoys that run
elsewhere (sidecars that connect with a bootstrap `meshd bootstrap` prints).

Where instances listen comes from the intents' `versions.*.endpoints` (the Envoy backend
derives the placement when none is given); `meshd up` is the other user of the same
server, with placement it allocates and processes it starts. "Applied" means every
connected proxy ACKed or NACKed; a NACK keeps that proxy on its last good snapshot and is
reported as the proxy's rejection.
"""

from __future__ import annotations

from collections.abc import Mapping

from compiler.api import Compilation
from compiler.lower.envoy import envoy_findings, envoy_snapshots
from compiler.lower.envoy.snapshot import RESOURCE_TYPES, Snapshot
from reconciler.loop import Acceptance, Pushed
from reconciler.xds.server import XdsServer

Desired = Mapping[str, Snapshot]
Versions = dict[str, tuple[str, ...]]
"""Node → the version of each of its resource types."""


def snapshot_versions(snapshots: Desired) -> Versions:
    return {
        node: tuple(snapshot.version(kind) for kind in RESOURCE_TYPES)
        for node, snapshot in snapshots.items()
    }


def changed_nodes(before: Versions, after: Versions) -> int:
    """Nodes added, removed, or given another version of some type."""
    return sum(1 for node in set(before) | set(after) if before.get(node) != after.get(node))


class XdsTarget:
    """Hands each revision's snapshots to `server` and waits for the proxies' answers."""

    def __init__(self, server: XdsServer, *, address: str) -> None:
        self.server = server
        self.address = address
        self.findings: tuple[str, ...] = ()
        """What the Envoy backend could not lower in the last rendered revision."""
        self._versions: Versions = {}

    def __repr__(self) -> str:
        return f"XdsTarget({self.address!r})"

    @property
    def name(self) -> str:
        return f"xds {self.address}"

    def render(self, compilation: Compilation) -> Desired:
        engine = compilation.engine()
        self.findings = tuple(engine.query(envoy_findings))
        snapshots: Desired = engine.query(envoy_snapshots)
        return snapshots

    async def push(self, desired: Desired, *, revision: str) -> Pushed:
        versions = snapshot_versions(desired)
        changed = changed_nodes(self._versions, versions)
        self._versions = versions
        generation = self.server.set_snapshots(desired)
        return Pushed(
            generation=generation,
            changed=changed,
            inventory={node: "/".join(parts) for node, parts in sorted(versions.items())},
        )

    async def confirm(self, pushed: Pushed, *, timeout: float) -> Acceptance:
        """Connected proxies only: one that is not connected gets its snapshot when it
        connects, and is not waited for."""
        result = await self.server.wait_acked(pushed.generation, timeout)
        return Acceptance(
            accepted=result.acked, rejected=dict(result.nacked), pending=result.pending
        )
