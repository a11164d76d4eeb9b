"""The rollout state file: `<namespace>/<rollout name>` → current step index.

Kept by the reconciler (outside Git) and passed to `render`/`plan` with
`--rollout-state FILE` (YAML or JSON). A missing entry means step 0. A malformed file is
a located error, never a guess: the wrong step would shift live traffic.
"""

from __future__ import annotations

import re

from compiler.load.yamlnodes import parse_source

KEY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class RolloutStateError(Exception):
    """A malformed rollout state file; the message starts with `file:line:col:`."""


def parse_rollout_state(file: str, raw: bytes) -> dict[str, int]:
    parsed = parse_source(file, raw)
    if parsed.problems:
        first = parsed.problems[0]
        raise RolloutStateError(f"{first.span}: {first.message}")
    documents = [d for d in parsed.documents if d.data is not None]
    if not documents:
        return {}
    if len(documents) > 1:
        raise RolloutStateError(
            f"{documents[1].positions.value(())}: rollout state: several documents; "
            "keep one mapping"
        )
    doc = documents[0]
    if not isinstance(doc.data, dict):
        raise RolloutStateError(
            f"{doc.positions.value(())}: rollout state: expected a mapping of "
            "'<namespace>/<rollout>: <step index>'; write e.g. 'bookinfo/reviews: 2'"
        )
    state: dict[str, int] = {}
    for key, value in doc.data.items():
        if not isinstance(key, str) or not KEY.match(key):
            raise RolloutStateError(
                f"{doc.positions.key((key,))}: rollout state: key {key!r} is not "
                "'<namespace>/<rollout name>'; write e.g. 'bookinfo/reviews'"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RolloutStateError(
                f"{doc.positions.value((key,))}: rollout state: {key}: {value!r} "
                "is not a step index; "
                "write a whole number from 0"
            )
        state[key] = value
    return state


def check_rollout_state(
    file: str, raw: bytes, state: dict[str, int], steps: dict[str, int]
) -> None:
    """Refuse a state that names no Rollout of the tree, or a step past a Rollout's last.

    `steps` maps each Rollout (`namespace/name`) to how many steps it has (1 for a fixed
    split: only step 0). Lowering tolerates any state (a missing entry is step 0, a step
    past the end is clamped), so a typo in the key or a stale index would otherwise move
    live traffic silently; a user's file is checked here instead, by the command line.
    The message names the file, the key's line and the key.
    """
    if not state:
        return
    positions = _key_positions(file, raw)
    for key, step in state.items():
        where = positions.get(key, file)
        if key not in steps:
            known = ", ".join(sorted(steps)[:5]) or "none"
            raise RolloutStateError(
                f"{where}: rollout state: {key}: no Rollout of that name in the policy root "
                f"(Rollouts: {known}); fix the key or remove the entry"
            )
        count = steps[key]
        if step >= count:
            last = "a fixed split has only step 0" if count == 1 else f"the last is {count - 1}"
            raise RolloutStateError(
                f"{where}: rollout state: {key}: step {step} does not exist "
                f"(steps count from 0; {last}); write a step index from 0 to {count - 1}"
            )


def _key_positions(file: str, raw: bytes) -> dict[str, str]:
    """Each key's `file:line:col` (the file already parsed once: no problems here)."""
    parsed = parse_source(file, raw)
    out: dict[str, str] = {}
    for doc in parsed.documents:
        if isinstance(doc.data, dict):
            for key in doc.data:
                if isinstance(key, str):
                    out[key] = str(doc.positions.key((key,)))
    return out
