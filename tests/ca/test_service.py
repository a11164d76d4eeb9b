"""The facade the reconciler loop and targets use."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cryptography import x509

from reconciler.ca.issue import key_matches
from reconciler.ca.rotation import start_rotation
from reconciler.ca.service import CAService
from tests.ca.support import SPIFFE_A, ack_all, git_trusting, new_store, reopen, verify_svid
from tests.helpers import NOW


def test_service_issues_for_sds_and_advances_in_automatic_mode(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    service = CAService(store.path)
    identity = service.issue(NOW, SPIFFE_A)
    assert key_matches(identity.key, identity.chain[0])
    assert "PRIVATE" not in repr(identity) and SPIFFE_A in repr(identity)
    roots = x509.load_pem_x509_certificates(service.bundle_pem(NOW))
    assert (
        verify_svid(identity.chain[0], intermediates=list(identity.chain[1:]), roots=roots, now=NOW)
        == SPIFFE_A
    )

    start_rotation(reopen(store), now=NOW, new_name="root-2")
    assert service.reconcile(NOW, []) == []  # gate 1: nobody acknowledged
    ack_all(reopen(store), "proxy")
    from reconciler.ca.consumers import read_file_consumers

    consumers = read_file_consumers(store.acks_dir)
    assert service.reconcile(NOW, consumers) == []  # Git does not say it trusts root-2
    git = git_trusting(reopen(store))
    [step] = service.reconcile(NOW, consumers, git)
    assert "issue-from-new" in step
    assert service.spiffe_bundle(NOW)["spiffe_sequence"] == 2
    later = NOW + timedelta(hours=25)
    [step] = service.reconcile(later, consumers, git)
    assert "trust-new-only" in step
    assert len(x509.load_pem_x509_certificates(service.bundle_pem(later))) == 1
    assert service.status_snapshot(later)["version"] == 1
    assert "meshd_ca_bundle_sequence 3" in service.metrics(later)
    assert sorted(service.cacerts(later, namespace="istio-system").data) == [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ]
