"""Field ownership for the stand-in's server-side apply, at the granularity it emulates.

A "field" is a path: `metadata.labels.<key>`, `metadata.annotations.<key>`, and, for every
other top-level key (`spec`, `data`, `type`, ...), each direct child of a non-empty mapping
or the key itself. That is coarser than the API server's structured-merge-diff (which
descends into every map and into lists by their merge keys) and fine enough for a
reconciler that owns whole top-level spec fields.
"""

from __future__ import annotations

import copy
from typing import Any

Path = tuple[str, ...]
SYSTEM_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
IDENTITY = ("apiVersion", "kind", "metadata", "status")


def fields(obj: dict[str, Any]) -> dict[Path, Any]:
    """Every owned field of `obj` with its value."""
    found: dict[Path, Any] = {}
    meta = obj.get("metadata") or {}
    for section in ("labels", "annotations"):
        for key, value in (meta.get(section) or {}).items():
            found[("metadata", section, key)] = value
    for top, value in obj.items():
        if top in IDENTITY:
            continue
        if isinstance(value, dict) and value:
            for child, inner in value.items():
                found[(top, child)] = inner
        else:
            found[(top,)] = value
    return found


def get_path(obj: dict[str, Any], path: Path) -> Any:
    node: Any = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def set_path(obj: dict[str, Any], path: Path, value: Any) -> None:
    node = obj
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = copy.deepcopy(value)


def del_path(obj: dict[str, Any], path: Path) -> None:
    node: Any = obj
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)
    if path[0] == "metadata" and len(path) == 3 and not obj["metadata"].get(path[1], True):
        del obj["metadata"][path[1]]


def fields_v1(paths: set[Path]) -> dict[str, Any]:
    """The `fieldsV1` form of a set of paths (`{"f:spec": {"f:hosts": {}}}`)."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


def dotted(path: Path) -> str:
    return "." + ".".join(path)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
MISSING: Any = _MISSING
