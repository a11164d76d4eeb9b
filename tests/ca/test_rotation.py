"""Root rotation through every phase: which leaves verify where, and the gates."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.ca.consumers import read_file_consumers, register_consumer, write_file_ack
from reconciler.ca.errors import CAError
from reconciler.ca.issue import KeyAlgorithm
from reconciler.ca.rotation import advance, auto_advance, next_gate, start_rotation
from reconciler.ca.state import ConsumerKind, Phase, Settings
from reconciler.ca.status import ca_status_snapshot
from reconciler.ca.store import KeyStore
from tests.ca.support import (
    SPIFFE_A,
    SPIFFE_B,
    ack_all,
    git_trusting,
    issue,
    new_store,
    reopen,
    verifies,
)
from tests.helpers import NOW


def consumers(store: KeyStore) -> list:  # type: ignore[type-arg]
    return read_file_consumers(store.acks_dir)


def test_full_rotation_keeps_every_live_leaf_verifying(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st", consumers=("proxy-a", "proxy-b"))
    old_leaf = issue(store, SPIFFE_A)
    ack_all(store, "proxy-a", "proxy-b")

    # phase 1: trust-both — old root still issues; the bundle holds both roots
    start_rotation(store, now=NOW, new_name="root-2")
    store = reopen(store)
    assert store.state.rotation is not None
    assert store.state.rotation.phase is Phase.TRUST_BOTH
    bundle = store.trusted_roots()
    assert len(bundle) == 2 and verifies(old_leaf, bundle)
    assert issue(store, SPIFFE_B).chain[-1] == store.root_cert("root-1")
    gate = next_gate(store, consumers(store), NOW)
    assert gate is not None and not gate.holds and "proxy-a, proxy-b" in gate.detail
    with pytest.raises(
        CAError, match="gate not met: every registered consumer reports the new root root-2"
    ):
        advance(store, consumers(store), now=NOW, force=False, git_trusted=git_trusting(store))

    # gate 1: consumers report the new root
    ack_all(store, "proxy-a", "proxy-b")
    t1 = NOW + timedelta(hours=1)
    advance(store, consumers(store), now=t1, force=False, git_trusted=git_trusting(store))
    store = reopen(store)
    assert store.state.rotation is not None
    assert store.state.rotation.phase is Phase.ISSUE_FROM_NEW
    new_leaf = issue(store, SPIFFE_A, now=t1)
    assert new_leaf.chain[-1] == store.root_cert("root-2")
    bundle = store.trusted_roots()
    assert verifies(old_leaf, bundle, t1) and verifies(new_leaf, bundle, t1)
    # a peer that has only the old root rejects new leaves: why gate 1 exists
    assert not verifies(new_leaf, [store.root_cert("root-1")], t1)

    # gate 2: the SPIFFE_B leaf from root-1 is live, so dropping root-1 is refused
    with pytest.raises(CAError, match="1 live leaf certificate\\(s\\) still chain to it"):
        advance(store, consumers(store), now=t1, force=False, git_trusted=git_trusting(store))
    issue(store, SPIFFE_B, now=t1)  # re-issued under root-2: no live leaf needs root-1
    advance(store, consumers(store), now=t1, force=False, git_trusted=git_trusting(store))
    store = reopen(store)
    assert store.state.rotation is not None
    assert store.state.rotation.phase is Phase.TRUST_NEW_ONLY
    bundle = store.trusted_roots()
    assert bundle == [store.root_cert("root-2")]
    assert verifies(new_leaf, bundle, t1)
    assert not verifies(old_leaf, bundle, t1)  # exactly where it should fail
    assert not store.root_key_path("root-1").exists()
    assert store.archive_key_path("root-1").exists()
    assert store.state.bundle_sequence == 3  # +1 for each bundle change, none for the switch


def test_gate_two_holds_once_the_old_leaves_expired(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    issue(store)
    start_rotation(store, now=NOW, new_name="root-2")
    ack_all(store, "proxy")
    advance(store, consumers(store), now=NOW, force=False, git_trusted=git_trusting(store))
    gate = next_gate(store, consumers(store), NOW + timedelta(hours=23))
    assert gate is not None and not gate.holds
    gate = next_gate(store, consumers(store), NOW + timedelta(hours=24, seconds=1))
    assert gate is not None and gate.holds


def test_no_acknowledgement_means_gate_one_does_not_hold(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    start_rotation(store, now=NOW, new_name="root-2")
    gate = next_gate(store, [], NOW)
    assert gate is not None and not gate.holds and gate.detail.endswith("proxy")


def test_a_consumer_that_acknowledged_only_the_old_root_blocks(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st", consumers=("fresh", "stale"))
    write_file_ack(store.acks_dir, "stale", [store.state.root("root-1").fingerprint])
    start_rotation(store, now=NOW, new_name="root-2")
    ack_all(store, "fresh")
    gate = next_gate(store, consumers(store), NOW)
    assert gate is not None and not gate.holds and gate.detail.endswith("stale")


def test_force_skips_a_gate_says_so_and_records_it(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    start_rotation(store, now=NOW, new_name="root-2")
    step = advance(store, [], now=NOW, force=True, git_trusted=git_trusting(store))
    assert (
        "--force skips the gate 'every registered consumer reports the new root root-2'"
        in step.skipped
    )
    store = reopen(store)
    assert store.state.rotation is not None
    assert store.state.rotation.forced == [
        "trust-both: every registered consumer reports the new root root-2"
    ]


def test_automatic_mode_advances_only_while_gates_hold(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    issue(store)
    assert (
        auto_advance(store, [], now=NOW, git_trusted=git_trusting(store)) == []
    )  # never starts a rotation
    start_rotation(store, now=NOW, new_name="root-2")
    assert auto_advance(store, consumers(store), now=NOW, git_trusted=git_trusting(store)) == []
    ack_all(store, "proxy")
    done = auto_advance(store, consumers(store), now=NOW, git_trusted=git_trusting(store))
    assert len(done) == 1 and "issue-from-new" in done[0]
    later = NOW + timedelta(hours=25)
    done = auto_advance(store, consumers(store), now=later, git_trusted=git_trusting(store))
    assert len(done) == 1 and "trust-new-only" in done[0]
    assert auto_advance(store, consumers(store), now=later, git_trusted=git_trusting(store)) == []


def test_a_second_rotation_can_follow_a_completed_one_but_not_overlap(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    start_rotation(store, now=NOW, new_name=None)
    with pytest.raises(CAError, match="a rotation is already in phase trust-both"):
        start_rotation(store, now=NOW, new_name=None)
    advance(store, [], now=NOW, force=True, git_trusted=git_trusting(store))
    advance(store, [], now=NOW, force=True, git_trusted=git_trusting(store))
    store = reopen(store)
    start_rotation(store, now=NOW, new_name=None)
    assert store.state.trusted == ["root-2", "root-3"]
    assert store.state.issuer == "root-2"


def test_intermediate_renews_automatically_before_expiry(tmp_path: Path) -> None:
    settings = Settings(intermediate_ttl="30d", renew_before="7d", workload_ttl="24h")
    store = new_store(tmp_path / "st", settings=settings)
    first = store.intermediate_cert("root-1")
    issue(store, now=NOW + timedelta(days=22))
    assert store.state.root("root-1").intermediate == 1
    leaf = issue(store, now=NOW + timedelta(days=24))
    store = reopen(store)
    assert store.state.root("root-1").intermediate == 2
    second = store.intermediate_cert("root-1")
    assert second != first and leaf.chain[0] == second
    assert verifies(leaf, store.trusted_roots(), NOW + timedelta(days=24))


def test_ca_status_snapshot_counts_live_leaves_per_root(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    issue(store, SPIFFE_A)
    issue(store, SPIFFE_B, lifetime=timedelta(hours=2))
    issue(store, SPIFFE_B, lifetime=timedelta(hours=3))  # supersedes the 2h one
    start_rotation(store, now=NOW, new_name="root-2")
    snapshot = ca_status_snapshot(store, NOW)
    fp1, fp2 = (store.state.root(n).fingerprint for n in ("root-1", "root-2"))
    assert snapshot == {
        "version": 1,
        "roots": [
            {"fingerprint": fp1, "liveLeaves": 2, "maxLeafNotAfter": "2026-11-26T12:00:00Z"},
            {"fingerprint": fp2, "liveLeaves": 0, "maxLeafNotAfter": None},
        ],
    }
    later = ca_status_snapshot(store, NOW + timedelta(hours=4))
    assert later["roots"][0]["liveLeaves"] == 1  # type: ignore[index]


def test_with_external_issuance_gate_two_waits_the_workload_ttl(tmp_path: Path) -> None:
    """On Kubernetes istiod issues the leaves: the store cannot list them, so gate 2 is the
    maximum workload TTL after the switch."""
    from reconciler.ca.store import create_store

    store = create_store(
        tmp_path / "st",
        trust_domain="cluster.local",
        algorithm=KeyAlgorithm.ECDSA_P256,
        settings=Settings(),
        root_name="root-1",
        passphrase=None,
        now=NOW,
        external_leaves=True,
    )
    register_consumer(store.state, "proxy", ConsumerKind.XDS, NOW)
    start_rotation(store, now=NOW, new_name="root-2")
    advance(store, [], now=NOW, force=True, git_trusted=git_trusting(store))
    gate = next_gate(store, [], NOW + timedelta(hours=23))
    assert gate is not None and not gate.holds
    assert (
        "waiting the maximum workload TTL after the switch, until 2026-11-26T12:00" in gate.detail
    )
    gate = next_gate(store, [], NOW + timedelta(hours=24))
    assert gate is not None and gate.holds
