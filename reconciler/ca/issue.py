"""Making keys and certificates: root, intermediate and workload SVIDs (cryptography only).

Every certificate carries Subject and Authority Key Identifiers (cryptography's verifier
rejects chains without AKI); the root has no URI name constraints (the verifier reports
them as unsupported). Workload certificates have an empty subject, exactly one SPIFFE URI
SAN and serverAuth + clientAuth, as the X.509-SVID specification asks.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

BACKDATE = timedelta(minutes=5)
"""Certificates start slightly in the past so peers with a small clock skew accept them."""

SPIFFE_ID = re.compile(
    r"^spiffe://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$"
)


class KeyAlgorithm(enum.StrEnum):
    ECDSA_P256 = "ecdsa-p256"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"


def generate_key(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm is KeyAlgorithm.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    size = 2048 if algorithm is KeyAlgorithm.RSA_2048 else 3072
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def public_key_bytes(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches(key: PrivateKey, cert: x509.Certificate) -> bool:
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return False
    return public_key_bytes(key.public_key()) == public_key_bytes(public)


@dataclass(frozen=True, slots=True)
class Validity:
    not_before: datetime
    not_after: datetime

    @classmethod
    def starting(cls, now: datetime, ttl: timedelta) -> Validity:
        return cls(now - BACKDATE, now + ttl)


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_identifiers(
    builder: x509.CertificateBuilder, subject_key: PublicKey, issuer_key: PublicKey
) -> x509.CertificateBuilder:
    return builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False
    ).add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)


def _ca_usage() -> x509.KeyUsage:
    return _key_usage(cert_sign=True, key_encipherment=False)


def _key_usage(*, cert_sign: bool, key_encipherment: bool) -> x509.KeyUsage:
    """Signatures always; certificate and CRL signing for a CA; key encipherment only for a
    leaf whose RSA key TLS may use for key transport. Nothing else is ever set."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _sign(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256())


def make_root(
    key: PrivateKey, *, trust_domain: str, name: str, validity: Validity
) -> x509.Certificate:
    """A self-signed root; path length 1 (root -> intermediate -> leaf)."""
    subject = _name(f"{name} root CA", trust_domain)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
    )
    builder = _key_identifiers(builder, key.public_key(), key.public_key())
    return _sign(builder, key)


def make_intermediate(
    key: PublicKey,
    *,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    trust_domain: str,
    name: str,
    validity: Validity,
) -> x509.Certificate:
    """The mesh intermediate (path length 0), signed by a root."""
    not_after = min(validity.not_after, issuer_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} intermediate CA", trust_domain))
        .issuer_name(issuer_cert.subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity.not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
    )
    builder = _key_identifiers(builder, key, issuer_key.public_key())
    return _sign(builder, issuer_key)


def make_svid(
    key: PublicKey,
    *,
    spiffe_id: str,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    validity: Validity,
) -> x509.Certificate:
    """An X.509-SVID: empty subject, one SPIFFE URI SAN, serverAuth + clientAuth.

    The lifetime is cut to the issuer's so a leaf never outlives its intermediate."""
    not_after = min(validity.not_after, issuer_cert.not_valid_after_utc)
    usage = _key_usage(cert_sign=False, key_encipherment=isinstance(key, rsa.RSAPublicKey))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer_cert.subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity.not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        # The subject is empty, so the SAN extension must be critical (RFC 5280 4.2.1.6).
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=True
        )
    )
    builder = _key_identifiers(builder, key, issuer_key.public_key())
    return _sign(builder, issuer_key)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
