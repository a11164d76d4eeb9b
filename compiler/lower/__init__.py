"""Stage 4: lower a compiled model to a backend's objects.

`lower` is the one entry point the CLI, the plan and the reconciler use. It refuses a
compilation that has blocking errors — nothing is emitted (or applied) from a revision
that does not compile. Lowering runs through the compilation's session, so a re-lower
after a small change recomputes only the objects whose recorded inputs changed.
"""

from __future__ import annotations

from compiler.api import Compilation
from compiler.artifacts import Artifacts
from compiler.diagnostics import Diagnostic, Severity
from compiler.gcpause import paused_gc

TARGETS = ("istio", "envoy")

__all__ = ["TARGETS", "LoweringRefused", "lower"]


class LoweringRefused(Exception):
    """The compilation has errors; `diagnostics` are the blocking ones."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        count = len(diagnostics)
        super().__init__(
            f"policy tree does not compile: {count} error{'s' if count != 1 else ''}; "
            "fix them (meshc lint lists them) before rendering"
        )


def lower(compilation: Compilation, *, target: str = "istio") -> Artifacts:
    """The artifacts of an `ok` compilation for `target`: Kubernetes objects ("istio"),
    or every node's xDS resources keyed (type, node id, name) ("envoy")."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: unknown; choose one of {', '.join(TARGETS)}")
    if not compilation.ok:
        raise LoweringRefused(compilation.blocking(Severity.ERROR))
    with paused_gc():
        if target == "envoy":
            from compiler.lower.envoy import envoy_artifacts

            return compilation.engine().query(envoy_artifacts)
        from compiler.lower.istio import istio_artifacts

        return compilation.engine().query(istio_artifacts)
