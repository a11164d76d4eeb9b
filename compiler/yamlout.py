"""The block-YAML emitter behind `meshc render` and the plan's resource diffs.

The emitted objects are plain JSON-shaped data (dicts with string keys, lists, strings,
ints, floats, booleans, None), so a small emitter of our own writes them; a library
emitter written in Python took ~10 ms per object (a minute for a 1,000-service mesh).

The output is fixed by the golden tests and by every rendered tree already on disk (a
re-render rewrites only files whose bytes changed), so the format rules below must not
move: keys sorted, sequences at their parent's indentation, `- key: value` for a mapping
in a sequence, strings a YAML 1.1 or 1.2 reader would retype single-quoted, strings
with non-printable characters double-quoted with escapes.

Speed: a 1,000-service render writes ~5,000 objects, ~300,000 scalars of which only a
few thousand differ (names, hosts, paths repeat in every object), so the quoting
decision (two regular expressions and a few substring tests) is memoised per string;
and each line is built once with its final prefix instead of being built at one
indentation and re-sliced for `- ` items.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

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

_STRING_CACHE_SIZE = 1 << 16
"""Distinct strings remembered: a 1,000-service render has ~20,000; bounded so a
long-lived process (the reconciler, a watch session) does not grow without limit."""


def to_yaml(obj: Any) -> str:
    """One object as block YAML with sorted keys (see the module docstring)."""
    if isinstance(obj, dict) and obj:
        out: list[str] = []
        _mapping(obj, "", "", out)
        return "".join(out)
    if isinstance(obj, list) and obj:
        out = []
        _sequence(obj, "", "", out)
        return "".join(out)
    if isinstance(obj, dict):
        return "{}\n"
    if isinstance(obj, list):
        return "[]\n"
    return scalar(obj) + "\n"


def _mapping(value: dict[Any, Any], indent: str, lead: str, out: list[str]) -> None:
    """Append a non-empty mapping; its first line starts with `lead` (the `- ` of the
    sequence item holding it, or `indent`), the others with `indent`."""
    child = indent + "  "
    append = out.append
    for key in sorted(value):
        item = value[key]
        head = lead + (string(key) if type(key) is str else _string(str(key))) + ":"
        lead = indent
        kind = type(item)
        if kind is str:
            append(head + " " + string(item) + "\n")
        elif kind is dict or (kind is not list and isinstance(item, dict)):
            if item:
                append(head + "\n")
                _mapping(item, child, child, out)
            else:
                append(head + " {}\n")
        elif kind is list or isinstance(item, list):
            if item:
                append(head + "\n")
                _sequence(item, indent, indent, out)  # at the parent's indentation
            else:
                append(head + " []\n")
        else:
            append(head + " " + scalar(item) + "\n")


def _sequence(value: list[Any], indent: str, lead: str, out: list[str]) -> None:
    """Append a non-empty sequence; its first `-` follows `lead`, the others `indent`. A
    non-empty collection item starts on its dash's line (`- key: v`, `- - x`)."""
    child = indent + "  "
    append = out.append
    for item in value:
        head = lead + "-"
        lead = indent
        kind = type(item)
        if kind is str:
            append(head + " " + string(item) + "\n")
        elif kind is dict or (kind is not list and isinstance(item, dict)):
            if item:
                _mapping(item, child, head + " ", out)
            else:
                append(head + " {}\n")
        elif kind is list or isinstance(item, list):
            if item:
                _sequence(item, child, head + " ", out)
            else:
                append(head + " []\n")
        else:
            append(head + " " + scalar(item) + "\n")


def scalar(value: Any) -> str:
    """A scalar as YAML: exact `str` values through the memoised quoting, the rest as
    YAML 1.1 and 1.2 readers read them back (`null`, `true`, `.inf`, `1.0e+20`)."""
    kind = type(value)
    if kind is str:
        return string(value)
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


@lru_cache(maxsize=_STRING_CACHE_SIZE)
def string(text: str) -> str:
    """`_string`, memoised. Only exact `str` values may come here: a `str` subclass (a
    `(str, Enum)` member) is equal to its value and would share its entry, while
    `str()` of it differs."""
    return _string(text)


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
