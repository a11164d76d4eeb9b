"""`meshd status --repo/--state`: the reconciler's persisted state, as a reader wants it."""

from __future__ import annotations

from reconciler.state import ReconcilerState


def state_lines(state: ReconcilerState, *, suspended: bool) -> list[str]:
    lines = [
        f"source:     {state.source or '-'}",
        f"target:     {state.target or '-'}",
        f"applied:    {state.last_applied_revision or 'nothing yet'}",
        f"attempted:  {state.last_attempted_revision or '-'} at {state.last_attempt_at or '-'}",
        f"suspended:  {'yes' if suspended else 'no'}",
    ]
    for condition in state.conditions:
        mark = "True " if condition.status else "False"
        lines.append(
            f"{condition.type:<11} {mark} {condition.reason}: {condition.message} "
            f"(since {condition.since})"
        )
    if state.last_error:
        lines.append(f"last error: {state.last_error}")
    lines.extend(f"  {finding}" for finding in state.findings)
    counters = ", ".join(f"{k} {v}" for k, v in sorted(state.counters.items()))
    lines.append(f"counters:   {counters or '-'}")
    lines.append(f"inventory:  {len(state.inventory)} object(s)")
    if state.rollout_steps:
        steps = ", ".join(f"{k} step {v}" for k, v in sorted(state.rollout_steps.items()))
        lines.append(f"rollouts:   {steps}")
    if state.history:
        lines.append("history (newest first):")
        lines.extend(
            f"  {h.revision[:12]}  {h.applied_at}  {h.duration_seconds:.3f}s  {h.changed} changed"
            for h in state.history
        )
    return lines
