"""The on-disk key store: the private side of the CA.

Layout (directories 0700, files 0600, every write atomic):

    <state>/state.json                      the commit point (see state.py)
    <state>/roots/<name>/root.pem           root certificate (public)
    <state>/roots/<name>/root.key           root private key (PKCS#8, optionally encrypted)
    <state>/roots/<name>/intermediate-<n>.pem / .key
    <state>/leaves/<serial>.pem / .key      leaves issued with a key made here
    <state>/archive/<name>/root.key         root keys retired by a rotation
    <state>/acks/<consumer>.json            file-based consumer acknowledgements

Keys are loaded only when an operation signs, and never leave this module except as
in-memory key objects; nothing here formats key bytes into a message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from compiler.kinds.common import duration_ms
from compiler.kinds.mesh.anchors import fingerprint
from reconciler.ca.errors import CAError
from reconciler.ca.fsutil import atomic_write, check_private_file, ensure_private_dir, read_file
from reconciler.ca.issue import (
    KeyAlgorithm,
    PrivateKey,
    Validity,
    generate_key,
    key_matches,
    make_intermediate,
    make_root,
    pem,
)
from reconciler.ca.state import STATE_FILE, STATE_VERSION, RootRecord, Settings, State, parse_state
from reconciler.faults import checkpoint

PASSPHRASE_ENV = "MESHD_CA_PASSPHRASE"
TRUST_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
"""SPIFFE trust domain characters, as every SPIFFE ID this CA issues must spell them."""


def check_trust_domain(domain: str) -> None:
    """Refuse at init what would make every later issue fail."""
    if len(domain) > 255 or not TRUST_DOMAIN.match(domain):
        raise CAError(
            f"trust domain {domain!r} is not a SPIFFE trust domain",
            remedy="use lowercase letters, digits, '.' and '-' (at most 255), e.g. cluster.local",
        )


def ttl(text: str) -> timedelta:
    return timedelta(milliseconds=duration_ms(text))


@dataclass(frozen=True, slots=True)
class Passphrase:
    """Encryption-at-rest secret; its repr never shows the value."""

    value: bytes = field(repr=False)

    def __repr__(self) -> str:
        return "Passphrase(***)"


def read_passphrase(file: Path | None) -> Passphrase | None:
    """From `--passphrase-file` (first line) or `$MESHD_CA_PASSPHRASE`; None when neither."""
    if file is not None:
        raw = read_file(file, what="passphrase file").splitlines()
        if not raw or not raw[0]:
            raise CAError(
                "passphrase file is empty",
                path=file,
                remedy="write the passphrase on its first line",
            )
        return Passphrase(raw[0])
    value = os.environ.get(PASSPHRASE_ENV)
    return Passphrase(value.encode()) if value else None


@dataclass(slots=True)
class KeyStore:
    path: Path
    state: State
    passphrase: Passphrase | None = field(default=None, repr=False)
    _certs: dict[Path, x509.Certificate] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r}, roots={[r.name for r in self.state.roots]})"

    # -- paths --------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    def root_dir(self, name: str) -> Path:
        return self.path / "roots" / name

    def root_cert_path(self, name: str) -> Path:
        return self.root_dir(name) / "root.pem"

    def root_key_path(self, name: str) -> Path:
        return self.root_dir(name) / "root.key"

    def intermediate_paths(self, name: str, number: int | None = None) -> tuple[Path, Path]:
        number = number if number is not None else self.state.root(name).intermediate
        base = self.root_dir(name) / f"intermediate-{number}"
        return base.with_suffix(".pem"), base.with_suffix(".key")

    def archive_key_path(self, name: str) -> Path:
        return self.path / "archive" / name / "root.key"

    @property
    def acks_dir(self) -> Path:
        return self.path / "acks"

    @property
    def leaves_dir(self) -> Path:
        return self.path / "leaves"

    # -- reading ------------------------------------------------------------------------

    def certificate(self, path: Path) -> x509.Certificate:
        cached = self._certs.get(path)
        if cached is not None:
            return cached
        raw = read_file(path, what="certificate")
        try:
            cert = x509.load_pem_x509_certificate(raw)
        except ValueError:
            raise CAError(
                "not a valid PEM certificate (corrupt or truncated)",
                path=path,
                remedy="restore it from backup",
            ) from None
        self._certs[path] = cert
        return cert

    def root_cert(self, name: str) -> x509.Certificate:
        return self.certificate(self.root_cert_path(name))

    def intermediate_cert(self, name: str) -> x509.Certificate:
        return self.certificate(self.intermediate_paths(name)[0])

    def load_key(self, path: Path, cert: x509.Certificate) -> PrivateKey:
        """Load a private key and check that it belongs to `cert`."""
        check_private_file(path)
        raw = read_file(path, what="private key")
        secret = self.passphrase.value if self.passphrase and self.state.encrypted else None
        if self.state.encrypted and secret is None:
            raise CAError(
                "private key is encrypted and no passphrase was given",
                path=path,
                remedy=f"set ${PASSPHRASE_ENV} or pass --passphrase-file",
            )
        try:
            key = serialization.load_pem_private_key(raw, password=secret)
        except (ValueError, TypeError):
            problem = (
                "cannot decrypt the private key (wrong passphrase?)"
                if secret
                else ("not a valid PEM private key (corrupt, truncated or encrypted)")
            )
            raise CAError(
                problem, path=path, remedy="check the passphrase or restore the key"
            ) from None
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CAError("unsupported key type (expected ECDSA or RSA)", path=path)
        if not key_matches(key, cert):
            raise CAError(
                "private key does not belong to its certificate "
                f"{cert.subject.rfc4514_string()!r} (wrong key for certificate)",
                path=path,
                remedy="restore the matching key, or rotate to a new root",
            )
        return key

    def root_key(self, name: str) -> PrivateKey:
        return self.load_key(self.root_key_path(name), self.root_cert(name))

    def intermediate_key(self, name: str) -> PrivateKey:
        cert_path, key_path = self.intermediate_paths(name)
        return self.load_key(key_path, self.certificate(cert_path))

    def trusted_roots(self) -> list[x509.Certificate]:
        return [self.root_cert(name) for name in self.state.trusted]

    # -- writing ------------------------------------------------------------------------

    def key_bytes(self, key: PrivateKey) -> bytes:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if self.state.encrypted:
            if self.passphrase is None:
                raise CAError(
                    "the store encrypts keys but no passphrase was given",
                    path=self.state_file,
                    remedy=f"set ${PASSPHRASE_ENV} or pass --passphrase-file",
                )
            encryption = serialization.BestAvailableEncryption(self.passphrase.value)
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def write_key(self, path: Path, key: PrivateKey) -> None:
        ensure_private_dir(path.parent)
        atomic_write(path, self.key_bytes(key))

    def write_cert(self, path: Path, cert: x509.Certificate) -> None:
        ensure_private_dir(path.parent)
        atomic_write(path, pem(cert))
        self._certs[path] = cert

    def save(self) -> None:
        """The commit point: everything the new state references is already on disk."""
        checkpoint("before-state")
        atomic_write(self.state_file, self.state.to_json())
        checkpoint("after-state")

    # -- building blocks of operations ----------------------------------------------------

    def create_root(self, name: str, now: datetime) -> RootRecord:
        """Write a new root and its first intermediate (not yet referenced by the state)."""
        algorithm = self.state.key_algorithm
        settings = self.state.settings
        root_key = generate_key(algorithm)
        root = make_root(
            root_key,
            trust_domain=self.state.trust_domain,
            name=name,
            validity=Validity.starting(now, ttl(settings.root_ttl)),
        )
        self.write_key(self.root_key_path(name), root_key)
        checkpoint("root-key-written")
        self.write_cert(self.root_cert_path(name), root)
        checkpoint("root-cert-written")
        self._write_intermediate(name, 1, root, root_key, now)
        return RootRecord(name=name, fingerprint=fingerprint(root))

    def renew_intermediate(self, name: str, now: datetime) -> int:
        """Write intermediate n+1 for root `name`; the caller commits by bumping the record."""
        record = self.state.root(name)
        number = record.intermediate + 1
        self._write_intermediate(name, number, self.root_cert(name), self.root_key(name), now)
        return number

    def _write_intermediate(
        self, name: str, number: int, root: x509.Certificate, root_key: PrivateKey, now: datetime
    ) -> None:
        key = generate_key(self.state.key_algorithm)
        cert = make_intermediate(
            key.public_key(),
            issuer_cert=root,
            issuer_key=root_key,
            trust_domain=self.state.trust_domain,
            name=name,
            validity=Validity.starting(now, ttl(self.state.settings.intermediate_ttl)),
        )
        cert_path, key_path = self.intermediate_paths(name, number)
        self.write_key(key_path, key)
        checkpoint("intermediate-key-written")
        self.write_cert(cert_path, cert)
        checkpoint("intermediate-cert-written")


def create_store(
    path: Path,
    *,
    trust_domain: str,
    algorithm: KeyAlgorithm,
    settings: Settings,
    root_name: str,
    passphrase: Passphrase | None,
    now: datetime,
    external_leaves: bool = False,
) -> KeyStore:
    check_trust_domain(trust_domain)
    if (path / STATE_FILE).exists():
        raise CAError(
            "a CA state already exists here",
            path=path / STATE_FILE,
            remedy="this store is already initialised: show its Mesh edit with `meshd ca "
            "rotate mesh-edit --mesh FILE [--write]`, or choose another --state",
        )
    ensure_private_dir(path)
    placeholder = State(
        version=STATE_VERSION,
        trust_domain=trust_domain,
        key_algorithm=algorithm,
        encrypted=passphrase is not None,
        settings=settings,
        roots=[],
        trusted=[root_name],
        issuer=root_name,
        bundle_sequence=1,
        external_leaves=external_leaves,
    )
    store = KeyStore(path, placeholder, passphrase)
    record = store.create_root(root_name, now)
    store.state.roots.append(record)
    store.state.record(now, f"initialised with root {root_name} ({record.fingerprint})")
    store.save()
    return store


def require_state_dir(path: Path) -> None:
    """Refuse a state directory that does not exist, naming `meshd ca init` as the remedy."""
    if not path.is_dir():
        raise CAError(
            "no CA state directory here",
            path=path,
            remedy="create one with `meshd ca init --state DIR`",
        )


def open_store(path: Path, *, passphrase: Passphrase | None) -> KeyStore:
    """Open and check a store: version, every certificate, key files present and private.

    Also finishes what a crash interrupted (archiving, temporaries): call it while holding
    `fsutil.exclusive_lock(path)` when another process may write the store."""
    require_state_dir(path)
    ensure_private_dir(path)
    state_path = path / STATE_FILE
    state = parse_state(read_file(state_path, what="CA state"), state_path)
    store = KeyStore(path, state, passphrase)
    verify_passphrase(store, required=False)
    finish_archiving(store)
    remove_stale_temporaries(path)
    for record in state.roots:
        cert = store.root_cert(record.name)
        if fingerprint(cert) != record.fingerprint:
            raise CAError(
                f"root certificate does not match the fingerprint recorded in "
                f"{STATE_FILE} ({record.fingerprint})",
                path=store.root_cert_path(record.name),
                remedy="restore the original certificate from backup",
            )
        if record.archived:
            continue
        check_private_file(store.root_key_path(record.name))
        cert_path, key_path = store.intermediate_paths(record.name)
        inter = store.certificate(cert_path)
        check_private_file(key_path)
        if inter.issuer != cert.subject:
            raise CAError(
                f"intermediate is not issued by root {record.name!r}",
                path=cert_path,
                remedy="restore it from backup, or renew with `meshd ca rotate intermediate`",
            )
    return store


def verify_passphrase(store: KeyStore, *, required: bool) -> None:
    """Check the given passphrase against a key already in the store, before anything is
    written with it: a wrong one would otherwise encrypt the next key with the wrong secret.

    `required`: the command writes keys, so an encrypted store needs the passphrase now
    rather than after half of the operation."""
    state = store.state
    if not state.encrypted:
        if store.passphrase is not None:
            raise CAError(
                "a passphrase was given but this store keeps its keys unencrypted",
                path=store.state_file,
                remedy=f"drop --passphrase-file and unset ${PASSPHRASE_ENV}",
            )
        return
    if store.passphrase is None:
        if required:
            raise CAError(
                "the store is encrypted and no passphrase was given",
                path=store.state_file,
                remedy=f"set ${PASSPHRASE_ENV} or pass --passphrase-file",
            )
        return
    store.root_key(state.issuer)  # the issuer's root key is never archived


def remove_stale_temporaries(path: Path) -> None:
    """Temporary files of writes a crash interrupted (never referenced by the state)."""
    for stale in path.rglob(".*.tmp-*"):
        if stale.is_file():
            stale.unlink()


def finish_archiving(store: KeyStore) -> None:
    """Resume an interrupted archive: the state says archived, the live key copy remains."""
    for record in store.state.roots:
        if not record.archived:
            continue
        archived = store.archive_key_path(record.name)
        for key_path in store.root_dir(record.name).glob("*.key"):
            if archived.exists():
                key_path.unlink()
