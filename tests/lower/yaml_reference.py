"""The YAML emitter as it was before `compiler.yamlout` (kept verbatim as the oracle).

`meshc render` output on disk and in the golden tests was written by this code; the
property tests in `tests/lower/test_yamlout.py` hold the fast emitter to the same bytes.
Not used by meshc itself.
"""

from __future__ import annotations

import re
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
