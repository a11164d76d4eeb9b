"""The CA as the reconciler loop and the targets use it: one object, one lock per call.

    ca = CAService(Path("/var/lib/meshd/ca"), passphrase=read_passphrase(None))
    events = ca.reconcile(now, consumers)      # renew intermediates, advance gated phases
    ca.bundle_pem(now)                         # xDS validation context
    ca.cacerts(now, namespace="istio-system")  # Kubernetes target only; never print it
    identity = ca.issue(now, spiffe_id)        # SDS: certificate chain + key, in memory

Every call takes the store's writer lock, re-reads the state from disk (the CLI may have
changed it) and receives the time from the caller, who reads the clock once per operation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509

from reconciler.ca.consumers import Consumer
from reconciler.ca.fsutil import exclusive_lock
from reconciler.ca.issue import PrivateKey
from reconciler.ca.leaves import check_store_times, issue_leaf
from reconciler.ca.outputs import CacertsSecret, cacerts_secret, spiffe_bundle, trust_bundle_pem
from reconciler.ca.rotation import auto_advance
from reconciler.ca.status import ca_status_snapshot, metrics_text
from reconciler.ca.store import KeyStore, Passphrase, open_store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WorkloadIdentity:
    """An SVID for SDS. The key is for the workload's proxy only; the repr hides it."""

    spiffe_id: str
    chain: tuple[x509.Certificate, ...]
    key: PrivateKey = field(repr=False)

    def __repr__(self) -> str:
        return f"WorkloadIdentity({self.spiffe_id!r}, serial={self.chain[0].serial_number:x})"


@dataclass(slots=True)
class CAService:
    path: Path
    passphrase: Passphrase | None = field(default=None, repr=False)

    def _with_store(self, action: Callable[[KeyStore], T]) -> T:
        with exclusive_lock(self.path):
            return action(open_store(self.path, passphrase=self.passphrase))

    def reconcile(
        self,
        now: datetime,
        consumers: list[Consumer],
        git_trusted: frozenset[str] | None = None,
    ) -> list[str]:
        """Automatic mode: what changed (empty when nothing was due). `git_trusted`: the
        fingerprints the Mesh document in Git trusts; without them the rotation never
        switches to the new issuer."""
        return self._with_store(
            lambda store: auto_advance(store, consumers, now=now, git_trusted=git_trusted)
        )

    def bundle_pem(self, now: datetime) -> bytes:
        def run(store: KeyStore) -> bytes:
            check_store_times(store, now)
            return trust_bundle_pem(store)

        return self._with_store(run)

    def spiffe_bundle(self, now: datetime) -> dict[str, Any]:
        def run(store: KeyStore) -> dict[str, Any]:
            check_store_times(store, now)
            return spiffe_bundle(store)

        return self._with_store(run)

    def cacerts(self, now: datetime, *, namespace: str) -> CacertsSecret:
        def run(store: KeyStore) -> CacertsSecret:
            check_store_times(store, now)
            return cacerts_secret(store, namespace=namespace)

        return self._with_store(run)

    def issue(self, now: datetime, spiffe_id: str) -> WorkloadIdentity:
        def run(store: KeyStore) -> WorkloadIdentity:
            leaf = issue_leaf(store, spiffe_id=spiffe_id, now=now)
            assert leaf.key_path is not None
            key = store.load_key(leaf.key_path, leaf.certificate)
            return WorkloadIdentity(spiffe_id, (leaf.certificate, *leaf.chain[:-1]), key)

        return self._with_store(run)

    def status_snapshot(self, now: datetime) -> dict[str, object]:
        return self._with_store(lambda store: ca_status_snapshot(store, now))

    def metrics(self, now: datetime) -> str:
        return self._with_store(lambda store: metrics_text(store, now))
