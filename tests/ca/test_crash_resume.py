"""Crash `meshd ca rotate` between any two writes of each phase; the store stays whole and
the phase happens exactly once.

Every checkpoint is exercised in-process (the crash raises a BaseException nothing
catches, and the store is re-read from disk, as after a real death); one checkpoint per
phase is also exercised with a real process killed mid-phase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler import faults
from reconciler.ca.meshfile import load_mesh, proposed_text
from reconciler.ca.rotation import advance, start_rotation
from reconciler.ca.state import Phase
from reconciler.ca.store import KeyStore, open_store
from tests.ca.support import (
    MESH_YAML,
    SPIFFE_A,
    SPIFFE_B,
    ack_all,
    git_trusting,
    issue,
    meshd,
    meshd_inproc,
    new_store,
    verifies,
)
from tests.helpers import NOW

LATER = NOW + timedelta(hours=30)  # every root-1 leaf has expired: gate 2 holds

START = [
    "root-key-written",
    "root-cert-written",
    "intermediate-key-written",
    "intermediate-cert-written",
    "before-rename:root.key",
    "before-rename:state.json",
    "before-state",
    "after-state",
]
SWITCH = ["before-rename:state.json", "before-state", "after-state"]
DROP = ["archive-key-written", "before-rename:root.key", "before-state", "after-state"]

CASES = [
    *(("start", p) for p in START),
    *(("switch", p) for p in SWITCH),
    *(("drop", p) for p in DROP),
]
BEFORE = {"start": None, "switch": Phase.TRUST_BOTH, "drop": Phase.ISSUE_FROM_NEW}
AFTER = {"start": Phase.TRUST_BOTH, "switch": Phase.ISSUE_FROM_NEW, "drop": Phase.TRUST_NEW_ONLY}
SEQUENCE = {"start": 2, "switch": 2, "drop": 3}
TRUSTED = {"start": ["root-1", "root-2"], "switch": ["root-1", "root-2"], "drop": ["root-2"]}


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so no handler swallows it."""


def prepared(path: Path, transition: str, now: datetime = NOW) -> KeyStore:
    """A store just before `transition`, and next to it a Mesh file in step with it."""
    store = new_store(path, now=now)
    issue(store, SPIFFE_A, now=now)
    ack_all(store, "proxy")  # acknowledges root-1 only: gate 1 of a new rotation fails
    if transition in ("switch", "drop"):
        start_rotation(store, now=now, new_name="root-2")
        ack_all(store, "proxy")
    if transition == "switch":  # a long-lived root-1 leaf: gate 2 will not hold at LATER
        issue(store, SPIFFE_B, now=now, lifetime=timedelta(hours=100))
    if transition == "drop":
        advance(store, [], now=now, force=True, git_trusted=git_trusting(store))
    mesh = mesh_path(path)
    mesh.write_text(MESH_YAML)
    mesh.write_text(proposed_text(load_mesh(mesh), store))
    return store


def mesh_path(state: Path) -> Path:
    return state.parent / "mesh.yaml"


def phase_of(store: KeyStore) -> Phase | None:
    return store.state.rotation.phase if store.state.rotation else None


def rotate_args(state: Path, transition: str) -> tuple[str, ...]:
    """`rotate start` for the first transition, `rotate advance` (with the Mesh file, whose
    anchors already trust the new root) for the others."""
    if transition == "start":
        return ("ca", "rotate", "start", "--state", str(state))
    return ("ca", "rotate", "advance", "--state", str(state), "--mesh", str(mesh_path(state)))


def check_done_once(state: Path, transition: str, later: datetime = LATER) -> None:
    store = open_store(state, passphrase=None)
    assert phase_of(store) is AFTER[transition]
    assert [r.name for r in store.state.roots] == ["root-1", "root-2"]  # no duplicate root
    assert sorted(p.name for p in (state / "roots").iterdir()) == ["root-1", "root-2"]
    assert store.state.trusted == TRUSTED[transition]
    assert store.state.bundle_sequence == SEQUENCE[transition]
    leaf = issue(store, SPIFFE_A, now=later)
    assert verifies(leaf, store.trusted_roots(), later)
    if transition == "drop":
        assert not any(store.root_dir("root-1").glob("*.key")), "live copies of the old key"
        assert store.archive_key_path("root-1").exists()


@pytest.mark.parametrize(("transition", "point"), CASES, ids=[f"{t}-{p}" for t, p in CASES])
def test_crash_at_every_checkpoint_then_resume_does_the_phase_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transition: str, point: str
) -> None:
    state = tmp_path / "st"
    prepared(state, transition)

    def die(code: int) -> None:
        raise Crash(code)

    monkeypatch.setattr(faults, "_die", die)
    with pytest.raises(Crash):
        meshd_inproc(*rotate_args(state, transition), env={faults.ENV: point}, clock=LATER)
    monkeypatch.delenv(faults.ENV, raising=False)

    # the store opens cleanly in the state before or after the phase, nothing between
    store = open_store(state, passphrase=None)
    committed = phase_of(store) == AFTER[transition]
    assert committed == (point == "after-state")
    if not committed:
        assert phase_of(store) == BEFORE[transition]
        resumed = meshd_inproc(*rotate_args(state, transition), clock=LATER)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_done_once(state, transition)
    if transition != "drop":
        # rerunning never repeats the phase: the next gate does not hold yet
        mesh = load_mesh(mesh_path(state))  # Git trusts the new root (committed)
        mesh_path(state).write_text(proposed_text(mesh, open_store(state, passphrase=None)))
        again = meshd_inproc(*rotate_args(state, "switch"), clock=LATER)
        assert again.returncode == 1 and "gate not met" in again.stderr
        assert phase_of(open_store(state, passphrase=None)) is AFTER[transition]


def test_a_real_process_killed_mid_phase_resumes(tmp_path: Path) -> None:
    """A real process acts at the real time (only in-process tests can inject a clock)."""
    transition = "start"
    state = tmp_path / "st"
    now = datetime.now(UTC).replace(microsecond=0)
    prepared(state, transition, now=now)
    killed = meshd(*rotate_args(state, transition), env={faults.ENV: "before-state"})
    assert killed.returncode == 137, killed.stdout + killed.stderr
    assert phase_of(open_store(state, passphrase=None)) == BEFORE[transition]
    resumed = meshd(*rotate_args(state, transition))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_done_once(state, transition, later=now + timedelta(hours=30))
