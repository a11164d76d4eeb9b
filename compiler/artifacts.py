"""Stage 5: a deterministic set of emitted objects, keyed by identity.

Backends produce plain dicts (Kubernetes objects); `Artifacts` orders them and
serialises them byte-identically for the same input (sorted keys, fixed ordering,
no timestamps), which the plan, the reconciler and the golden tests rely on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


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


_YAML11_IMPLICIT = re.compile(
    r"""^(?:[yY]|[nN]|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    |~|null|Null|NULL|=|<<
    |[-+]?(?:0b[0-1_]+|0[0-7_]+|(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|[1-9][0-9_]*(?::[0-5]?[0-9])+)
    |[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    |0o[0-7]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?)$""",
    re.VERBOSE,
)
"""Plain scalars a YAML 1.1 reader (Kubernetes' sigs.k8s.io/yaml, PyYAML) would not read as
strings (`yes`, `on`, `0755`, `1:30`, dates), plus YAML 1.2's numbers (`0o17`, `1e3`):
quoting these keeps every reader reading a string."""


_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./*,=@+()\[\]<>$^?|\\#:;'!%&~ -]*")
"""Strings written without quotes: no YAML indicator first, nothing that starts a comment,
a mapping value, an alias, a tag or a flow collection."""


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    return _string(str(value))


def _float(value: float) -> str:
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _string(text: str) -> str:
    plain = (
        _PLAIN.fullmatch(text) is not None
        and not text.endswith(" ")
        and " #" not in text
        and ": " not in text
        and not text.endswith(":")
        and _YAML11_IMPLICIT.match(text) is None
    )
    if plain:
        return text
    if all(_printable(c) for c in text):
        return "'" + text.replace("'", "''") + "'"
    return '"' + "".join(c if _printable(c) and c not in '"\\' else _escape(c) for c in text) + '"'


def _printable(char: str) -> bool:
    """Characters every YAML reader takes literally inside quotes (no breaks, no BOM)."""
    code = ord(char)
    return (
        0x20 <= code <= 0x7E
        or (0xA0 <= code <= 0xD7FF and code not in (0x2028, 0x2029))
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
        or 0x10000 <= code <= 0x10FFFF
    )


def _escape(char: str) -> str:
    code = ord(char)
    named = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    if char in named:
        return named[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Block YAML: mappings with sorted keys, sequences at their parent's indentation."""
    if isinstance(value, dict):
        for key in sorted(value):
            _emit_entry(f"{indent}{_string(str(key))}:", value[key], indent, out, nested="  ")
    elif isinstance(value, list):
        for item in value:
            _emit_entry(f"{indent}-", item, indent, out, nested="  ", in_list=True)
    else:
        out.append(f"{indent}{_scalar(value)}\n")


def _emit_entry(
    head: str, value: Any, indent: str, out: list[str], *, nested: str, in_list: bool = False
) -> None:
    if isinstance(value, dict) and value:
        if in_list:
            inner: list[str] = []
            _emit(value, indent + nested, inner)
            out.append(f"{head} {inner[0][len(indent) + len(nested) :]}")
            out.extend(inner[1:])
        else:
            out.append(f"{head}\n")
            _emit(value, indent + nested, out)
    elif isinstance(value, list) and value:
        if in_list:
            inner = []
            _emit(value, indent + nested, inner)
            out.append(f"{head} {inner[0][len(indent) + len(nested) :]}")
            out.extend(inner[1:])
        else:
            out.append(f"{head}\n")
            _emit(value, indent, out)
    elif isinstance(value, dict):
        out.append(f"{head} {{}}\n")
    elif isinstance(value, list):
        out.append(f"{head} []\n")
    else:
        out.append(f"{head} {_scalar(value)}\n")


def to_yaml(obj: Any) -> str:
    """One object as block YAML with sorted keys.

    A small emitter of our own: the objects are plain JSON-shaped data, and a library
    emitter written in Python took ~10 ms per object (a minute for a 1,000-service mesh).
    Strings a YAML 1.1 or 1.2 reader would retype are quoted.
    """
    if isinstance(obj, dict | list) and obj:
        out: list[str] = []
        _emit(obj, "", out)
        return "".join(out)
    if isinstance(obj, dict):
        return "{}\n"
    if isinstance(obj, list):
        return "[]\n"
    return _scalar(obj) + "\n"


def to_yaml_stream(objects: Iterable[dict[str, Any]]) -> str:
    return "".join("---\n" + to_yaml(obj) for obj in objects)
