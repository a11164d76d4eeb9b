"""What the Istio target accepts for each bounded type (`compiler.kinds.bounds`).

These are facts about the Istio backend, registered as its `TargetLimits` when the range
rules load. The table lives in the lint package rather than under `compiler/lower/istio`
because a compile must import only modules the lint cache's code fingerprint covers
(`compiler.cache.lint_sources`: an edited limit must invalidate cached findings) and
importing anything under `compiler.lower` runs the lowering package's `__init__`.
"""

from __future__ import annotations

from compiler.kinds.bounds import TargetLimits, register_target

GO_DURATION_MAX_MS = (2**63 - 1) / 1_000_000
"""Go's `time.Duration` (int64 nanoseconds), which Istio and Kubernetes' CEL parse
durations into: about 106,751 days."""

ISTIO = register_target(
    TargetLimits(
        name="Istio",
        int_max={"int32": 2**31 - 1, "uint32": 2**32 - 1},
        # the CRDs' CEL rules: "must be a valid duration greater than 1ms"
        duration_min_ms=1,
        duration_max_ms=GO_DURATION_MAX_MS,
        duration_max_source="a Go duration",
        # proto3 scalars: a connection-pool limit of 0 is "not set", i.e. 2^32-1
        zero_limit_unset=True,
    )
)
"""Istio v1's limits: durations within 1 ms and Go's maximum, int32/uint32 counts."""
