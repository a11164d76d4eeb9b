"""Stage 4: lower a compiled model to a backend's objects.

`lower` is the one entry point the CLI, the plan and the reconciler use. It refuses a
compilation that has blocking errors — nothing is emitted (or applied) from a revision
that does not compile. A `LoweringCache` (kept by a long-lived caller such as the
planner) makes lowering incremental: see `compiler.lower.cache`.
"""

from __future__ import annotations

from compiler.api import Compilation
from compiler.artifacts import Artifacts
from compiler.diagnostics import Diagnostic, Severity
from compiler.gcpause import paused_gc
from compiler.lower.cache import LoweringCache

TARGETS = ("istio",)

__all__ = ["TARGETS", "LoweringCache", "LoweringRefused", "lower"]


class LoweringRefused(Exception):
    """The compilation has errors; `diagnostics` are the blocking ones."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        count = len(diagnostics)
        super().__init__(
            f"policy tree does not compile: {count} error{'s' if count != 1 else ''}; "
            "fix them (meshc lint lists them) before rendering"
        )


def lower(
    compilation: Compilation, *, target: str = "istio", cache: LoweringCache | None = None
) -> Artifacts:
    """The artifacts of an `ok` compilation for `target` (only "istio" so far).

    With `cache`, services whose inputs are unchanged since a recent call reuse that
    call's objects; the result is identical either way (tests/lower/test_incremental.py).
    """
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: unknown; choose one of {', '.join(TARGETS)}")
    if not compilation.ok:
        raise LoweringRefused(compilation.blocking(Severity.ERROR))
    from compiler.lower.istio import lower_istio_keyed

    with paused_gc():
        groups = lower_istio_keyed(
            compilation.model,
            now=compilation.now,
            rollout_state=compilation.rollout_state,
            cache=cache,
        )
        objects = cache.assemble(groups) if cache is not None else None
        return Artifacts(objects) if objects is not None else Artifacts.of_groups(groups)
