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
    """Every object that differs, in ObjectKey order (deterministic)."""
    changes: list[ResourceChange] = []
    for key in sorted(base.objects.keys() | head.objects.keys()):
        before = base.objects.get(key)
        after = head.objects.get(key)
        if before == after:
            continue
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
