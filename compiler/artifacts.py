"""Stage 5: a deterministic set of emitted objects, keyed by identity.

Backends produce plain dicts (Kubernetes objects); `Artifacts` orders them and
serialises them byte-identically for the same input (sorted keys, fixed ordering,
no timestamps), which the plan, the reconciler and the golden tests rely on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from compiler import yamlout


class ObjectKey(NamedTuple):
    """apiVersion's group, kind, namespace and name: one object's identity. A tuple, so
    hashing and comparing run in C (a re-plan looks up every key of a 1,000-service
    mesh's ~5,000 objects)."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        group = f".{self.group}" if self.group else ""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}{group}/{where}{self.name}"

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectKey:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        meta = obj.get("metadata", {})
        return cls(
            group,
            str(obj.get("kind", "")),
            str(meta.get("namespace", "")),
            str(meta.get("name", "")),
        )

    @property
    def filename(self) -> str:
        """A stable file name for the rendered-manifests layout."""
        group = self.group.split(".")[0] if self.group else "core"
        return f"{self.namespace or '_cluster'}/{self.kind.lower()}.{group}.{self.name}.yaml"


@dataclass(slots=True)
class Artifacts:
    objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, objects: Iterable[dict[str, Any]]) -> Artifacts:
        result = cls()
        for obj in objects:
            key = ObjectKey.of(obj)
            if key in result.objects:
                raise ValueError(f"two emitted objects share the identity {key}")
            result.objects[key] = obj
        return result

    @classmethod
    def of_groups(cls, groups: Sequence[Sequence[tuple[ObjectKey, dict[str, Any]]]]) -> Artifacts:
        """Objects already keyed (a backend's groups, some reused from a cache)."""
        result = cls()
        objects = result.objects
        count = 0
        for group in groups:
            objects.update(group)
            count += len(group)
        if len(objects) != count:  # rare: find the clash the way `of` reports it
            return cls.of(obj for group in groups for _, obj in group)
        return result

    def __iter__(self) -> Iterator[tuple[ObjectKey, dict[str, Any]]]:
        return iter(sorted(self.objects.items()))

    def __len__(self) -> int:
        return len(self.objects)

    def digest(self, key: ObjectKey) -> str:
        """Content address of one object (sha256 of its canonical JSON)."""
        return hashlib.sha256(canonical_json(self.objects[key]).encode()).hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def to_yaml(obj: Any) -> str:
    """One object as block YAML with sorted keys (`compiler.yamlout` says how and why)."""
    return yamlout.to_yaml(obj)


def to_yaml_stream(objects: Iterable[dict[str, Any]]) -> str:
    return "".join("---\n" + to_yaml(obj) for obj in objects)
