"""Backend-neutral traffic facts of one service: the rollout in force and its split at the
current step, the Resilience that applies to the whole service or to one port, and the
container port a service port reaches. Every backend and the plan's meaning read these,
so they agree on what the intent says.
"""

from __future__ import annotations

from compiler.kinds.resilience.model import ResilienceSpec
from compiler.kinds.rollout.model import RolloutDocument, RolloutSpec
from compiler.model.mesh import ServiceView
from compiler.validate import Intent


def current_rollout(view: ServiceView) -> Intent[RolloutDocument] | None:
    """The service's Rollout (lint rejects a second one; the first by reference wins)."""
    rollouts = sorted(view.rollouts, key=lambda r: r.ref)
    return rollouts[0] if rollouts else None


def rollout_state_key(rollout: Intent[RolloutDocument]) -> str:
    """The name the rollout state knows a Rollout by: `namespace/name`."""
    meta = rollout.model.metadata
    return f"{meta.namespace}/{meta.name}"


def current_weights(rollout: RolloutSpec, step: int | None) -> dict[str, int]:
    """The split in force: fixed, or the progressive step `step` names (missing = 0,
    clamped to the steps there are)."""
    if rollout.split is not None:
        return dict(rollout.split)
    if rollout.steps and rollout.canary is not None:
        index = min(max(step or 0, 0), len(rollout.steps) - 1)
        canary = rollout.steps[index].weight
        if rollout.canary == rollout.stable:
            return {rollout.stable: 100}
        return {rollout.stable: 100 - canary, rollout.canary: canary}
    return {rollout.stable: 100}


def live_weights(rollout: RolloutSpec, step: int | None) -> list[tuple[str, int]]:
    """The versions receiving traffic, sorted, with their weights (never empty)."""
    live = sorted((v, w) for v, w in current_weights(rollout, step).items() if w > 0)
    return live or [(rollout.stable, 100)]


def service_resilience(view: ServiceView) -> ResilienceSpec | None:
    """The service-wide Resilience (lint reports duplicates; the first by file wins)."""
    for intent in sorted(view.resilience, key=lambda r: r.ref):
        if intent.model.spec.port is None:
            spec: ResilienceSpec = intent.model.spec
            return spec
    return None


def port_resilience(view: ServiceView) -> dict[int, ResilienceSpec]:
    """Per port, the Resilience scoped to it (the first by file wins), ports sorted."""
    out: dict[int, ResilienceSpec] = {}
    for intent in sorted(view.resilience, key=lambda r: r.ref):
        port = intent.model.spec.port
        if port is not None:
            out.setdefault(int(port), intent.model.spec)
    return dict(sorted(out.items()))


def target_port(view: ServiceView, port: int | str) -> int | None:
    """A service port (number or name) as the container port the workload listens on."""
    for candidate in view.spec.ports:
        if port in (candidate.port, candidate.name):
            return int(candidate.container_port)
    for candidate in view.spec.ports:
        if port == candidate.container_port:
            return int(candidate.container_port)
    return None
