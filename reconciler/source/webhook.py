"""The webhook's shared-secret check, as GitHub signs deliveries (`X-Hub-Signature-256`).

A request asks for a fetch only when its body's HMAC-SHA256 under the shared secret equals
the header's; the comparison takes constant time so the check leaks nothing about the
secret. The body is never logged.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature-256"


def sign(secret: bytes, body: bytes) -> str:
    """The header value a sender computes: `sha256=<hex digest>`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is the body's signature under `secret` (False when absent)."""
    if not header or not secret:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())
