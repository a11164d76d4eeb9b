"""Stage 5: a deterministic set of emitted objects, keyed by identity.

Backends produce plain dicts (Kubernetes objects today; per-proxy xDS resources next),
each under an `ArtifactKey`; `Artifacts` orders them and serialises them byte-identically
for the same input (sorted keys, fixed ordering, no timestamps), which the plan, the
reconciler and the golden tests rely on. Nothing here reads a backend's fields except the
one constructor that says so (`of_kubernetes`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from compiler import yamlout


class ArtifactKey(NamedTuple):
    """One emitted artifact's identity, whatever the backend emits: its group and kind, the
    scope it lives in, and its name. A Kubernetes object: apiVersion's group, kind,
    namespace ("" when cluster-scoped) and name; a per-proxy xDS resource: its type, the
    proxy (node id) and the resource name. Kept to four neutral strings so one plan diff
    compares any backend's output. A tuple, so hashing and comparing run in C (a re-plan
    looks up every key of a 1,000-service mesh's ~5,000 objects)."""

    group: str
    kind: str
    scope: str
    name: str

    def __str__(self) -> str:
        group = f".{self.group}" if self.group else ""
        where = f"{self.scope}/" if self.scope else ""
        return f"{self.kind}{group}/{where}{self.name}"

    @classmethod
    def of_kubernetes(cls, obj: dict[str, Any]) -> ArtifactKey:
        """A Kubernetes object's key, read from its apiVersion, kind and metadata."""
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        meta = obj.get("metadata", {})
        return cls(
            group,
            str(obj.get("kind", "")),
            str(meta.get("namespace", "")),
            str(meta.get("name", "")),
        )


Keyed = tuple[ArtifactKey, dict[str, Any]]
"""One object under its key, as backends hand them over."""


@dataclass(slots=True)
class Artifacts:
    objects: dict[ArtifactKey, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of_kubernetes(cls, objects: Iterable[dict[str, Any]]) -> Artifacts:
        """Kubernetes objects, each keyed by `ArtifactKey.of_kubernetes`."""
        return cls.of_keyed((ArtifactKey.of_kubernetes(obj), obj) for obj in objects)

    @classmethod
    def of_keyed(cls, pairs: Iterable[Keyed]) -> Artifacts:
        """Objects already keyed; two under one key is a backend's bug, never a choice."""
        result = cls()
        for key, obj in pairs:
            if key in result.objects:
                raise ValueError(f"two emitted objects share the identity {key}")
            result.objects[key] = obj
        return result

    @classmethod
    def of_groups(cls, groups: Sequence[Sequence[Keyed]]) -> Artifacts:
        """Objects already keyed (a backend's groups, some reused from a cache)."""
        result = cls()
        objects = result.objects
        count = 0
        for group in groups:
            objects.update(group)
            count += len(group)
        if len(objects) != count:  # rare: find the clash the way `of_keyed` reports it
            return cls.of_keyed(pair for group in groups for pair in group)
        return result

    def __iter__(self) -> Iterator[Keyed]:
        return iter(sorted(self.objects.items()))

    def __len__(self) -> int:
        return len(self.objects)

    def digest(self, key: ArtifactKey) -> str:
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
