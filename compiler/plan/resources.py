"""The resource diff: created, changed and deleted objects between two `Artifacts`."""

from __future__ import annotations

import difflib
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

from compiler.artifacts import ArtifactKey, Artifacts, to_yaml
from compiler.plan.mask import mask_against, mask_value

Action = Literal["created", "changed", "deleted"]

_PAIR_CACHE_SIZE = 8192
_TEXT_CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class ResourceChange:
    key: ArtifactKey
    action: Action
    diff: str
    """A unified diff of the masked YAML (base -> head); all `+` or all `-` when created/deleted."""


@dataclass(slots=True)
class DiffCache:
    """Resource diffs memoised by the identities of the objects compared.

    A `LoweringCache` hands out the same dict for an unchanged service, so successive
    re-plans against one base meet the same (before, after) pairs again: each pair's
    equality test and YAML diff is computed once. Base objects repeat in every plan, so
    their masked YAML lines are memoised too. Every entry keeps its objects alive, so an
    id is never reused while its entry exists. Objects are never mutated once lowered
    (the lowering cache already relies on that); a cache is owned by one `Planner`.
    """

    pairs: dict[Hashable, tuple[object, object, str | None]] = field(default_factory=dict)
    """(key, id(before), id(after)) -> (before, after, diff or None when equal)."""
    texts: dict[int, tuple[object, list[str]]] = field(default_factory=dict)
    """id(object) -> (object, its masked YAML lines)."""

    def diff(self, key: ArtifactKey, before: Any, after: Any) -> str | None:
        """The diff of a pair; None when the two are equal."""
        ident = (key, id(before), id(after))
        hit = self.pairs.get(ident)
        if hit is not None and hit[0] is before and hit[1] is after:
            return hit[2]
        text = None if before == after else unified_yaml_diff(key, before, after, self)
        _put(self.pairs, ident, (before, after, text), _PAIR_CACHE_SIZE)
        return text

    def masked_lines(self, obj: Any) -> list[str]:
        """`obj` masked on its own (as a base side is), as YAML lines; do not modify."""
        hit = self.texts.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        lines = _yaml_lines(mask_value(obj))
        _put(self.texts, id(obj), (obj, lines), _TEXT_CACHE_SIZE)
        return lines


def _put(table: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """Insert, dropping the oldest entries past `limit` (dicts keep insertion order)."""
    table.pop(key, None)
    table[key] = value
    while len(table) > limit:
        del table[next(iter(table))]


def diff_artifacts(
    base: Artifacts, head: Artifacts, cache: DiffCache | None = None
) -> list[ResourceChange]:
    """Every object that differs, in ArtifactKey order (deterministic).

    An object a `LoweringCache` handed to both sides is the same object: the identity
    test skips it without comparing contents, and only the differing keys are sorted.
    With a `DiffCache`, pairs seen by an earlier plan are neither compared nor diffed.
    """
    memo = cache if cache is not None else DiffCache()
    old, new = base.objects, head.objects
    found: list[tuple[ArtifactKey, Action, str]] = []
    created = 0
    for key in [key for key, after in new.items() if old.get(key) is not after]:
        before, after = old.get(key), new[key]
        created += before is None
        text = memo.diff(key, before, after)
        if text is not None:
            found.append((key, "created" if before is None else "changed", text))
    if len(old) > len(new) - created:  # some base key is not in head: find the deleted
        for key in [key for key in old if key not in new]:
            found.append((key, "deleted", memo.diff(key, old[key], None) or ""))
    found.sort(key=lambda item: item[0])
    return [ResourceChange(key, action, text) for key, action, text in found]


def unified_yaml_diff(
    key: ArtifactKey,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    cache: DiffCache | None = None,
) -> str:
    """Unified diff of the masked YAML; base's lines come from `cache` when it has them."""
    if before is None:
        old: list[str] = []
    elif cache is not None:
        old = cache.masked_lines(before)
    else:
        old = _yaml_lines(mask_value(before))
    new = _yaml_lines(mask_against(before or {}, after)) if after is not None else []
    lines = difflib.unified_diff(
        old,
        new,
        fromfile=f"base/{key}" if before is not None else "/dev/null",
        tofile=f"head/{key}" if after is not None else "/dev/null",
        n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _yaml_lines(masked: Any) -> list[str]:
    return to_yaml(masked).splitlines(keepends=True)
