"""SDS material: each identity's certificate and the trust bundle, issued by the CA and kept
in memory only.

The CA call is blocking file I/O under the store's lock, so it runs in a worker thread;
the server asks for an identity when a snapshot names it and serves the `default` secret
once the certificate is here. A certificate is renewed at half its life, the bundle is
re-read on every check (a CA rotation changes it), and whoever registered `on_change` is
told which identities (or the bundle) moved so the affected nodes get a push.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from envoy.config.core.v3.base_pb2 import DataSource
from envoy.extensions.transport_sockets.tls.v3.common_pb2 import (
    CertificateValidationContext,
    TlsCertificate,
)
from envoy.extensions.transport_sockets.tls.v3.secret_pb2 import Secret

from compiler.kinds.mesh.anchors import fingerprint
from reconciler.ca.service import WorkloadIdentity

log = logging.getLogger("meshd.xds")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class CertificateAuthority(Protocol):
    """What SDS needs from the CA (`reconciler.ca.service.CAService` is one)."""

    def issue(self, now: datetime, spiffe_id: str) -> WorkloadIdentity: ...

    def bundle_pem(self, now: datetime) -> bytes: ...


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate ready for SDS. The key is PEM in memory; the repr shows only public facts."""

    identity: str
    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    serial: str
    not_before: datetime
    not_after: datetime

    @property
    def renew_at(self) -> datetime:
        """Half-life: a failed renewal still leaves half the lifetime to retry in."""
        return self.not_before + (self.not_after - self.not_before) / 2

    def __repr__(self) -> str:
        return f"IssuedCertificate({self.identity!r}, serial={self.serial})"


@dataclass(frozen=True, slots=True)
class TrustBundle:
    pem: bytes
    fingerprints: frozenset[str]
    """The roots it carries, as the CA's rotation gate names them."""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.pem).hexdigest()[:16]


def to_issued(identity: WorkloadIdentity) -> IssuedCertificate:
    leaf = identity.chain[0]
    return IssuedCertificate(
        identity=identity.spiffe_id,
        chain_pem=b"".join(cert.public_bytes(Encoding.PEM) for cert in identity.chain),
        key_pem=identity.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        serial=f"{leaf.serial_number:x}",
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
    )


def to_bundle(pem: bytes) -> TrustBundle:
    roots = x509.load_pem_x509_certificates(pem)
    return TrustBundle(pem, frozenset(fingerprint(root) for root in roots))


def certificate_secret(name: str, issued: IssuedCertificate) -> Secret:
    return Secret(
        name=name,
        tls_certificate=TlsCertificate(
            certificate_chain=DataSource(inline_bytes=issued.chain_pem),
            private_key=DataSource(inline_bytes=issued.key_pem),
        ),
    )


def bundle_secret(name: str, bundle: TrustBundle) -> Secret:
    return Secret(
        name=name,
        validation_context=CertificateValidationContext(
            trusted_ca=DataSource(inline_bytes=bundle.pem)
        ),
    )


OnChange = Callable[[frozenset[str], bool], None]
"""(identities whose certificate changed, whether the bundle changed)."""


@dataclass(slots=True)
class SecretCache:
    """Certificates by SPIFFE ID and the current bundle, refreshed by `run()`."""

    ca: CertificateAuthority
    clock: Clock = utc_now
    check_every: timedelta = timedelta(seconds=30)
    on_change: OnChange = lambda identities, bundle: None
    certificates: dict[str, IssuedCertificate] = field(default_factory=dict)
    bundle: TrustBundle | None = None
    errors: dict[str, str] = field(default_factory=dict)
    """The last CA error per identity ("" key: the bundle); a message, never key material."""
    _wanted: set[str] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def want(self, identities: Iterable[str]) -> None:
        """Make sure these identities get certificates (issued on the next refresh)."""
        new = set(identities) - self._wanted
        if new:
            self._wanted |= new
            self._wake.set()

    def retain(self, identities: set[str]) -> None:
        """Forget identities no snapshot names any more: no renewals for departed nodes."""
        self._wanted &= identities
        for gone in set(self.certificates) - identities:
            del self.certificates[gone]
            self.errors.pop(gone, None)

    async def refresh(self) -> None:
        """Issue what is missing or due, re-read the bundle, report what changed."""
        now = self.clock()
        bundle_changed = await self._refresh_bundle(now)
        changed: set[str] = set()
        for identity in sorted(self._wanted):
            current = self.certificates.get(identity)
            if current is not None and current.renew_at > now:
                continue
            if await self._issue(identity, now):
                changed.add(identity)
        if changed or bundle_changed:
            self.on_change(frozenset(changed), bundle_changed)

    async def _refresh_bundle(self, now: datetime) -> bool:
        try:
            pem = await asyncio.to_thread(self.ca.bundle_pem, now)
        except Exception as exc:  # the CA's message is safe; keep serving the last bundle
            self._record_error("", f"trust bundle: {exc}")
            return False
        self.errors.pop("", None)
        if self.bundle is not None and self.bundle.pem == pem:
            return False
        self.bundle = to_bundle(pem)
        roots = len(self.bundle.fingerprints)
        log.info("xds: trust bundle %s with %d root(s)", self.bundle.digest, roots)
        return True

    async def _issue(self, identity: str, now: datetime) -> bool:
        try:
            issued = to_issued(await asyncio.to_thread(self.ca.issue, now, identity))
        except Exception as exc:  # keep the current certificate; retry on the next check
            self._record_error(identity, f"certificate for {identity}: {exc}")
            return False
        self.errors.pop(identity, None)
        self.certificates[identity] = issued
        log.info(
            "xds: issued certificate %s for %s (valid until %s)",
            issued.serial,
            identity,
            issued.not_after.isoformat(),
        )
        return True

    def _record_error(self, key: str, message: str) -> None:
        if self.errors.get(key) != message:
            log.error("xds: %s", message)
        self.errors[key] = message

    def next_check(self) -> float:
        """Seconds until the next renewal is due, at most `check_every`, retries included."""
        limit = self.check_every.total_seconds()
        if self.errors or self._wanted - set(self.certificates):
            return min(limit, 1.0)
        if not self.certificates:
            return limit
        due = min(cert.renew_at for cert in self.certificates.values())
        return max(0.0, min(limit, (due - self.clock()).total_seconds()))

    async def run(self) -> None:
        """Refresh now, then whenever a renewal is due or a new identity is wanted."""
        while True:
            self._wake.clear()
            try:
                await self.refresh()
            except Exception as exc:  # a bug must not stop every future renewal
                self._record_error("", f"refresh failed: {exc!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.next_check())
