"""`meshc render --target envoy`: each workload instance's xDS snapshot as JSON, what
`istioctl proxy-config all -o json` shows Istio users.

The instances are those of the placement the intents describe (`versions.*.endpoints`);
`--workload` narrows the output to one node id (`<service>.<namespace>~<version>~<index>`)
or to every instance of one service (`name`, or `namespace/name`). What could not be
lowered for this target is printed as a warning on stderr, never dropped in silence.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import click
from rich.console import Console

from compiler.api import Compilation
from compiler.lower.envoy import envoy_findings, envoy_snapshots
from compiler.lower.envoy.dump import snapshots_text
from compiler.lower.envoy.snapshot import Snapshot


def render_envoy(compilation: Compilation, workload: str | None, err: Console) -> None:
    """Print the selected snapshots (the compilation is `ok`: `lower` checked it)."""
    engine = compilation.engine()
    snapshots = engine.query(envoy_snapshots)
    for finding in engine.query(envoy_findings):
        err.print(f"warning: {finding}", markup=False)
    if not snapshots:
        err.print(
            "note: no workload instance is placed: list each version's instances as "
            "versions.<version>.endpoints (host:port) to render their snapshots",
            markup=False,
        )
    selected = select(snapshots, workload) if workload is not None else snapshots
    sys.stdout.write(snapshots_text(selected))


def select(snapshots: Mapping[str, Snapshot], workload: str) -> dict[str, Snapshot]:
    """The node `workload` names, or every instance of the service it names."""
    if workload in snapshots:
        return {workload: snapshots[workload]}
    found = {
        node: snapshot
        for node, snapshot in snapshots.items()
        if workload in (_service(snapshot), _service(snapshot).split("/", 1)[1])
    }
    if not found:
        known = ", ".join(sorted(snapshots)) or "none"
        raise click.BadParameter(
            f"{workload!r} names no placed workload; give a node id or a service "
            f"(name or namespace/name). Placed: {known}",
            param_hint="--workload",
        )
    return found


def _service(snapshot: Snapshot) -> str:
    """`namespace/name` of a snapshot's service (node.cluster is `name.namespace`)."""
    name, _, namespace = snapshot.cluster.partition(".")
    return f"{namespace}/{name}"
