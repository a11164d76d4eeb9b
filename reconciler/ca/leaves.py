"""Issuing workload certificates (X.509 SVIDs) from the active issuer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from reconciler.ca.errors import REFUSED, USAGE, CAError
from reconciler.ca.issue import SPIFFE_ID, PublicKey, Validity, generate_key, make_svid
from reconciler.ca.rotation import renew_intermediates
from reconciler.ca.state import LeafRecord
from reconciler.ca.store import KeyStore, ttl


@dataclass(frozen=True, slots=True)
class IssuedLeaf:
    """The public result of an issue; the key (when made here) stays in the store."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key_path: Path | None


def check_valid_at(cert: x509.Certificate, *, path: Path, now: datetime, what: str) -> None:
    """Expired -> refused (exit 1); not valid yet -> clock skew (exit 2)."""
    if cert.not_valid_before_utc > now:
        raise CAError(
            f"{what} is not valid before {cert.not_valid_before_utc.isoformat()}, which is "
            f"after the current time {now.isoformat()} (clock skew?)",
            path=path,
            remedy="fix this machine's clock (or the one that made the certificate)",
            code=USAGE,
        )
    if cert.not_valid_after_utc <= now:
        raise CAError(
            f"{what} expired at {cert.not_valid_after_utc.isoformat()}",
            path=path,
            remedy="rotate to a new root with `meshd ca rotate start` (expired roots cannot renew)",
            code=REFUSED,
        )


def check_store_times(store: KeyStore, now: datetime) -> None:
    """Every trusted root must be valid now (the issuer's intermediate is renewed if due)."""
    for name in store.state.trusted:
        check_valid_at(
            store.root_cert(name), path=store.root_cert_path(name), now=now, what=f"root {name}"
        )


def spiffe_id_for(trust_domain: str, namespace: str, service_account: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def _requested_key(
    csr: x509.CertificateSigningRequest | None, public_key: PublicKey | None
) -> PublicKey | None:
    """The key to certify, checked before anything is written (a refused issue leaves the
    store as it was)."""
    if csr is None:
        return public_key
    if not csr.is_signature_valid:
        raise CAError("the CSR's signature does not verify", remedy="send a fresh CSR")
    public = csr.public_key()
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise CAError("the CSR's key type is not supported", remedy="use ECDSA P-256 or RSA")
    return public


def issue_leaf(
    store: KeyStore,
    *,
    spiffe_id: str,
    now: datetime,
    lifetime: timedelta | None = None,
    csr: x509.CertificateSigningRequest | None = None,
    public_key: PublicKey | None = None,
) -> IssuedLeaf:
    """Certify the CSR's key, or `public_key` (the caller holds the private half), or else a
    key made here and kept in the store (the service hands it to SDS in memory)."""
    state = store.state
    if not SPIFFE_ID.match(spiffe_id):
        raise CAError(
            f"{spiffe_id!r} is not a SPIFFE ID",
            remedy="write spiffe://<trust-domain>/ns/<ns>/sa/<sa>",
        )
    domain = spiffe_id.removeprefix("spiffe://").split("/", 1)[0]
    if domain != state.trust_domain:
        raise CAError(
            f"SPIFFE ID trust domain {domain!r} is not this CA's ({state.trust_domain!r})",
            remedy="issue within the mesh's trust domain",
        )
    requested = _requested_key(csr, public_key)
    check_store_times(store, now)
    renew_intermediates(store, now=now)
    issuer = state.issuer
    inter_path = store.intermediate_paths(issuer)[0]
    inter = store.intermediate_cert(issuer)
    check_valid_at(inter, path=inter_path, now=now, what=f"intermediate of {issuer}")
    inter_key = store.intermediate_key(issuer)
    ttl_ = lifetime or ttl(state.settings.workload_ttl)
    key_path: Path | None = None
    key = None
    if requested is None:
        key = generate_key(state.key_algorithm)
        requested = key.public_key()
    cert = make_svid(
        requested,
        spiffe_id=spiffe_id,
        issuer_cert=inter,
        issuer_key=inter_key,
        validity=Validity.starting(now, ttl_),
    )
    if key is not None:
        serial = f"{cert.serial_number:x}"
        key_path = store.leaves_dir / f"{serial}.key"
        store.write_key(key_path, key)
        store.write_cert(store.leaves_dir / f"{serial}.pem", cert)
    state.leaves = [leaf for leaf in state.leaves if leaf.not_after > now]
    state.leaves.append(
        LeafRecord(
            serial=f"{cert.serial_number:x}",
            root=issuer,
            spiffe_id=spiffe_id,
            issued_at=now,
            not_after=cert.not_valid_after_utc,
        )
    )
    store.save()
    return IssuedLeaf(cert, (inter, store.root_cert(issuer)), key_path)
