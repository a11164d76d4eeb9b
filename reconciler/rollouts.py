"""The progressive Rollouts' current steps: reconciler state, not Git.

A step is where a Rollout stands in time, so it lives beside the applied revision and
is carried from one revision to the next — with two corrections a reviewer expects: the
state of a Rollout the new revision no longer has is dropped (re-adding it later starts
over), and a Rollout whose steps changed restarts at step 0 (its old index would point
into a different schedule). Drift correction compiles with these steps, so a promoted
step is never undone as drift.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from compiler.api import Compilation
from compiler.model.traffic import rollout_state_key


@dataclass(frozen=True, slots=True)
class StepState:
    steps: dict[str, int]
    """Rollout (`namespace/name`) → current step index."""
    schedules: dict[str, str]
    """Rollout → fingerprint of its steps, to notice a changed schedule."""
    restarted: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


def schedules_of(compilation: Compilation) -> dict[str, str]:
    """Each progressive Rollout's steps, fingerprinted (fixed splits have no steps)."""
    found: dict[str, str] = {}
    for intent in compilation.model.rollouts:
        steps = intent.model.spec.steps
        if steps:
            text = json.dumps([step.model_dump(mode="json") for step in steps], sort_keys=True)
            found[rollout_state_key(intent)] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return found


def carry_steps(
    steps: Mapping[str, int], schedules: Mapping[str, str], compilation: Compilation
) -> StepState:
    """The step state for `compilation`'s Rollouts, carried from the previous revision's."""
    current = schedules_of(compilation)
    kept: dict[str, int] = {}
    restarted: list[str] = []
    for key, fingerprint in sorted(current.items()):
        if key not in steps:
            continue
        if schedules.get(key, fingerprint) != fingerprint:
            restarted.append(key)
            continue
        kept[key] = steps[key]
    dropped = tuple(sorted(set(steps) - set(current)))
    return StepState(kept, current, tuple(restarted), dropped)
