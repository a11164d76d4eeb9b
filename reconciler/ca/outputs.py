"""What targets consume: the Istio plug-in CA secret, the SPIFFE bundle, the PEM bundle.

The `cacerts` Secret holds the intermediate's private key. It is built in memory for the
Kubernetes target to apply and has no textual form here: its repr lists the data keys
only, and nothing in this package prints, renders or writes it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reconciler.ca.issue import pem
from reconciler.ca.store import KeyStore

DEFAULT_REFRESH_HINT = 300
"""Seconds; how often SPIFFE bundle consumers should poll (short, so rotations spread fast)."""


def trust_bundle_pem(store: KeyStore) -> bytes:
    """The trusted roots, concatenated (xDS validation context, Istio root-cert.pem)."""
    return b"".join(pem(cert) for cert in store.trusted_roots())


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_coord(value: int, size: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode()


def _jwk(cert_der: bytes, public: Any) -> dict[str, Any]:
    """A public JWK for an X.509 authority: never a private member."""
    entry: dict[str, Any] = {"use": "x509-svid", "x5c": [base64.b64encode(cert_der).decode()]}
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        entry.update(
            kty="EC",
            crv="P-256",
            x=_b64url_coord(numbers.x, size),
            y=_b64url_coord(numbers.y, size),
        )
    elif isinstance(public, rsa.RSAPublicKey):
        numbers_rsa = public.public_numbers()
        entry.update(kty="RSA", n=_b64url_uint(numbers_rsa.n), e=_b64url_uint(numbers_rsa.e))
    return entry


def spiffe_bundle(store: KeyStore, *, refresh_hint: int = DEFAULT_REFRESH_HINT) -> dict[str, Any]:
    """The SPIFFE trust bundle (a JWKS): one `x509-svid` key per trusted root."""
    keys = []
    for cert in store.trusted_roots():
        der = cert.public_bytes(serialization.Encoding.DER)
        keys.append(_jwk(der, cert.public_key()))
    return {
        "keys": keys,
        "spiffe_refresh_hint": refresh_hint,
        "spiffe_sequence": store.state.bundle_sequence,
    }


@dataclass(frozen=True, slots=True)
class CacertsSecret:
    """Istio's plug-in CA secret, for the Kubernetes target only."""

    namespace: str
    data: dict[str, bytes] = field(repr=False)
    name: str = "cacerts"

    def __repr__(self) -> str:
        return f"CacertsSecret({self.namespace}/{self.name}, keys={sorted(self.data)})"

    __str__ = __repr__

    def to_object(self) -> dict[str, Any]:
        """The Kubernetes object to apply (server-side); never log or render it."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "meshc"},
            },
            "type": "Opaque",
            "data": {k: base64.b64encode(v).decode() for k, v in sorted(self.data.items())},
        }


def cacerts_secret(store: KeyStore, *, namespace: str = "istio-system") -> CacertsSecret:
    """`ca-cert.pem`/`ca-key.pem`: the active intermediate; `cert-chain.pem`: intermediate
    then its root; `root-cert.pem`: every trusted root (the bundle)."""
    issuer = store.state.issuer
    inter, root = store.intermediate_cert(issuer), store.root_cert(issuer)
    key = store.intermediate_key(issuer)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    data = {
        "ca-cert.pem": pem(inter),
        "ca-key.pem": key_pem,
        "cert-chain.pem": pem(inter) + pem(root),
        "root-cert.pem": trust_bundle_pem(store),
    }
    return CacertsSecret(namespace, data)
