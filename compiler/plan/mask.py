"""Secret masking for every plan output.

Render never emits Secrets, but a plan must stay safe even if an object carries a
secret-like value: values under secret-like keys and PEM private-key blocks anywhere
are replaced before any diff or format sees them. A masked value that differs between
base and head says so, without revealing either value.
"""

from __future__ import annotations

import re
from typing import Any

MASKED = "(masked)"
MASKED_CHANGED = "(masked; changed)"

_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|token|secret|credential|private[-_.]?key|api[-_.]?key"
    r"|(ca|cert|tls|client|signing|server)[-_.]?key(\.pem)?|\.key$|^key\.pem$|^d$)",
    re.IGNORECASE,
)
_PEM_PRIVATE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----.*?(-----END \1-----|\Z)", re.DOTALL
)


def secret_key(name: str) -> bool:
    """Whether a mapping key names a secret-like value (password, token, tls.key, ...)."""
    return bool(_SECRET_KEY.search(name))


def mask_text(text: str) -> str:
    """Replace PEM private-key blocks (complete or cut off) in free text."""
    return _PEM_PRIVATE.sub(lambda m: f"-----{m.group(1)} {MASKED}-----", text)


def mask_pair(base: Any, head: Any) -> tuple[Any, Any]:
    """Mask both sides of a change; head's mask says whether the secret changed."""
    if isinstance(base, dict) and isinstance(head, dict):
        out_base: dict[str, Any] = {}
        out_head: dict[str, Any] = {}
        for key in base.keys() | head.keys():
            in_base, in_head = key in base, key in head
            if secret_key(str(key)):
                if in_base:
                    out_base[key] = MASKED
                if in_head:
                    same = in_base and base[key] == head[key]
                    out_head[key] = MASKED if same or not in_base else MASKED_CHANGED
                continue
            if in_base and in_head:
                out_base[key], out_head[key] = mask_pair(base[key], head[key])
            elif in_base:
                out_base[key] = mask_value(base[key])
            else:
                out_head[key] = mask_value(head[key])
        return out_base, out_head
    if isinstance(base, list) and isinstance(head, list) and len(base) == len(head):
        pairs = [mask_pair(b, h) for b, h in zip(base, head, strict=True)]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return mask_value(base), mask_value(head)


def mask_value(value: Any) -> Any:
    """Mask one object: secret-like keys and PEM private keys in strings."""
    if isinstance(value, dict):
        return {k: MASKED if secret_key(str(k)) else mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
