"""The resource diff: created, changed and deleted objects between two `Artifacts`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

from compiler.artifacts import Artifacts, ObjectKey, to_yaml
from compiler.plan.mask import mask_pair

Action = Literal["created", "changed", "deleted"]


@dataclass(frozen=True, slots=True)
class ResourceChange:
    key: ObjectKey
    action: Action
    diff: str
    """A unified diff of the masked YAML (base -> head); all `+` or all `-` when created/deleted."""


def diff_artifacts(base: Artifacts, head: Artifacts) -> list[ResourceChange]:
    """Every object that differs, in ObjectKey order (deterministic).

    An object a `LoweringCache` handed to both sides is the same object: the identity
    test skips it without comparing contents, and only the differing keys are sorted.
    """
    old, new = base.objects, head.objects
    differing = [
        key
        for key, after in new.items()
        if (before := old.get(key)) is not after and before != after
    ]
    differing.extend(key for key in old if key not in new)
    changes: list[ResourceChange] = []
    for key in sorted(differing):
        before, after = old.get(key), new.get(key)
        action: Action = "created" if before is None else "deleted" if after is None else "changed"
        changes.append(ResourceChange(key, action, unified_yaml_diff(key, before, after)))
    return changes


def unified_yaml_diff(
    key: ObjectKey, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> str:
    masked_before, masked_after = mask_pair(before or {}, after or {})
    old = to_yaml(masked_before).splitlines(keepends=True) if before is not None else []
    new = to_yaml(masked_after).splitlines(keepends=True) if after is not None else []
    lines = difflib.unified_diff(
        old,
        new,
        fromfile=f"base/{key}" if before is not None else "/dev/null",
        tofile=f"head/{key}" if after is not None else "/dev/null",
        n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
