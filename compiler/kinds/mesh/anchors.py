"""Pure helpers over the public side of the CA: fingerprints and anchor PEMs.

Shared by the compiler's CA checks, the plan's ca-status check and the reconciler, so all
three spell a fingerprint the same way: `sha256:` + uppercase hex pairs joined by colons.
Parsing a certificate is pure (no clock, no key store), so it is allowed in the compiler.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from compiler.kinds.mesh.model import CertificateAuthority

if TYPE_CHECKING:  # imported where a PEM is parsed: most meshes carry no certificate
    from cryptography import x509

PRIVATE_KEY_MARKER = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_CERT_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL)


def fingerprint_der(der: bytes) -> str:
    """`sha256:AA:BB:...` of a certificate's DER encoding."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def fingerprint(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return fingerprint_der(cert.public_bytes(Encoding.DER))


def normalize_fingerprint(text: str) -> str:
    """Accept `sha256:aabb...` with or without colons; return the canonical form."""
    body = text.split(":", 1)[1] if text.lower().startswith("sha256:") else text
    hexdigits = body.replace(":", "").upper()
    return "sha256:" + ":".join(hexdigits[i : i + 2] for i in range(0, len(hexdigits), 2))


@dataclass(frozen=True, slots=True)
class AnchorPem:
    """What an anchor's `pem:` holds. `error` explains why it is unusable (never echoing it)."""

    certificates: list[x509.Certificate] = field(default_factory=list)
    has_private_key: bool = False
    error: str | None = None


def parse_anchor_pem(text: str) -> AnchorPem:
    has_key = bool(PRIVATE_KEY_MARKER.search(text))
    blocks = _CERT_BLOCK.findall(text)
    if not blocks:
        return AnchorPem([], has_key, "holds no PEM certificate block")
    from cryptography import x509

    certificates: list[x509.Certificate] = []
    for index, block in enumerate(blocks):
        try:
            certificates.append(x509.load_pem_x509_certificate(block.encode()))
        except ValueError:
            problem = f"certificate block {index + 1} is not valid X.509"
            return AnchorPem(certificates, has_key, problem)
    if len(certificates) > 1:
        problem = f"holds {len(certificates)} certificates; one anchor is one root"
        return AnchorPem(certificates, has_key, problem)
    return AnchorPem(certificates, has_key, None)


def anchor_fingerprints(ca: CertificateAuthority) -> dict[str, str | None]:
    """Anchor name -> canonical fingerprint (None when a PEM anchor is unusable)."""
    result: dict[str, str | None] = {}
    for anchor in ca.anchors:
        if anchor.fingerprint is not None:
            result[anchor.name] = normalize_fingerprint(anchor.fingerprint)
            continue
        parsed = parse_anchor_pem(anchor.pem or "")
        usable = parsed.error is None and parsed.certificates
        result[anchor.name] = fingerprint(parsed.certificates[0]) if usable else None
    return result
