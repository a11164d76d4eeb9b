"""Stage 5: a deterministic set of emitted objects, keyed by identity.

Backends produce plain dicts (Kubernetes objects); `Artifacts` orders them and
serialises them byte-identically for the same input (sorted keys, fixed ordering,
no timestamps), which the plan, the reconciler and the golden tests rely on.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.representer import SafeRepresenter


@dataclass(frozen=True, order=True, slots=True)
class ObjectKey:
    """apiVersion's group, kind, namespace and name: one object's identity."""

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


_YAML11_IMPLICIT = re.compile(
    r"""^(?:[yY]|[nN]|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    |~|null|Null|NULL|=|<<
    |[-+]?(?:0b[0-1_]+|0[0-7_]+|(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|[1-9][0-9_]*(?::[0-5]?[0-9])+)
    |[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?)$""",
    re.VERBOSE,
)
"""Plain scalars a YAML 1.1 reader (Kubernetes' sigs.k8s.io/yaml, PyYAML) would not read as
strings: `yes`, `on`, `0755`, `1:30`, dates. ruamel writes YAML 1.2, where they are plain
strings, so such strings are quoted explicitly."""


class _Representer(SafeRepresenter):
    def represent_str(self, data: str) -> Any:
        if _YAML11_IMPLICIT.match(data):
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="'")
        return super().represent_str(data)


_Representer.add_representer(str, _Representer.represent_str)

_YAML = YAML(typ="safe", pure=True)
_YAML.Representer = _Representer
_YAML.default_flow_style = False
_YAML.sort_base_mapping_type_on_output = True  # type: ignore[assignment]
_YAML.width = 4096


def to_yaml(obj: Any) -> str:
    """One object as block YAML with sorted keys."""
    stream = io.StringIO()
    _YAML.dump(_sorted(obj), stream)
    return stream.getvalue()


def to_yaml_stream(objects: Iterable[dict[str, Any]]) -> str:
    return "".join("---\n" + to_yaml(obj) for obj in objects)
