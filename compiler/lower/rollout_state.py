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
