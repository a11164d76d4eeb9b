"""Secret masking for every plan output.

Render never emits Secrets, but a plan must stay safe even if an object carries a
secret-like value: values under secret-like keys and PEM private-key blocks anywhere
are replaced before any diff or format sees them. A masked value that differs between
base and head says so, without revealing either value.
"""

from __future__ import annotations

import re
from functools import lru_cache
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


@lru_cache(maxsize=8192)
def secret_key(name: str) -> bool:
    """Whether a mapping key names a secret-like value (password, token, tls.key, ...).
    Memoised: an object's keys come from a small vocabulary and a plan masks thousands."""
    return bool(_SECRET_KEY.search(name))


def mask_text(text: str) -> str:
    """Replace PEM private-key blocks (complete or cut off) in free text."""
    if "-----BEGIN " not in text:  # the pattern's literal start: most strings skip the regex
        return text
    return _PEM_PRIVATE.sub(lambda m: f"-----{m.group(1)} {MASKED}-----", text)


def mask_against(base: Any, head: Any) -> Any:
    """Head masked like `mask_value`, except that a secret-like value present on both
    sides with different contents reads MASKED_CHANGED."""
    if isinstance(base, dict) and isinstance(head, dict):
        out: dict[str, Any] = {}
        for key, value in head.items():
            if secret_key(str(key)):
                changed = key in base and base[key] != value
                out[key] = MASKED_CHANGED if changed else MASKED
            elif key in base:
                out[key] = mask_against(base[key], value)
            else:
                out[key] = mask_value(value)
        return out
    if isinstance(base, list) and isinstance(head, list) and len(base) == len(head):
        return [mask_against(b, h) for b, h in zip(base, head, strict=True)]
    return mask_value(head)


def mask_value(value: Any) -> Any:
    """Mask one object: secret-like keys and PEM private keys in strings."""
    if isinstance(value, dict):
        return {k: MASKED if secret_key(str(k)) else mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
