"""The one call from the local mesh into the Envoy backend: the compilation's engine with
the placement as its input → a snapshot per node, and what could not be lowered."""

from __future__ import annotations

from collections.abc import Mapping

from compiler.api import Compilation
from compiler.lower.envoy import envoy_findings, envoy_snapshots
from compiler.lower.envoy.snapshot import Snapshot
from compiler.model.placement import Placement


def lower_snapshots(
    compilation: Compilation, placement: Placement
) -> tuple[Mapping[str, Snapshot], tuple[str, ...]]:
    """Pure given its inputs; through the compilation's session, so an edit re-lowers only
    the nodes whose recorded reads changed."""
    compilation.placement = dict(placement)  # what `engine()` re-sets if the session moved
    engine = compilation.engine()
    engine.set_input("placement", None, compilation.placement)
    compilation.revision = engine.mark()
    return engine.query(envoy_snapshots), engine.query(envoy_findings)
