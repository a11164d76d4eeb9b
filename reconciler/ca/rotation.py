"""Root rotation as a resumable state machine, plus automatic intermediate renewal.

    (steady)  --start-->  trust-both  --gate 1-->  issue-from-new  --gate 2-->  trust-new-only

- start: a new root and intermediate are written to the key store; the bundle trusts both;
  the old root still issues.
- gate 1 (every consumer reports the new root) -> issue-from-new: the new root's
  intermediate issues; the bundle still trusts both.
- gate 2 (no live leaf chains to the old root: each expired, or re-issued under the new
  root) -> trust-new-only: the bundle trusts the new root only; the old root key is archived.

Every transition is committed by one atomic write of `state.json` (see state.py); `--force`
skips a gate and records that it did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from reconciler.ca.consumers import Consumer
from reconciler.ca.errors import REFUSED, CAError
from reconciler.ca.fsutil import atomic_write, ensure_private_dir
from reconciler.ca.state import LeafRecord, Phase, Rotation, State
from reconciler.ca.store import KeyStore, ttl
from reconciler.faults import checkpoint

ROOT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Gate:
    description: str
    holds: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Step:
    """What one `advance` did (for the CLI and the reconciler's events)."""

    summary: str
    skipped: str = ""


def live_leaves(state: State, now: datetime) -> list[LeafRecord]:
    """Leaves not expired and not superseded by a later leaf for the same identity."""
    latest: dict[str, LeafRecord] = {}
    for leaf in state.leaves:
        current = latest.get(leaf.spiffe_id)
        if current is None or leaf.issued_at >= current.issued_at:
            latest[leaf.spiffe_id] = leaf
    return [leaf for leaf in latest.values() if leaf.not_after > now]


def next_gate(store: KeyStore, consumers: list[Consumer], now: datetime) -> Gate | None:
    """The gate guarding the next phase, or None when no rotation is in progress."""
    rotation = store.state.rotation
    if rotation is None or rotation.phase is Phase.TRUST_NEW_ONLY:
        return None
    if rotation.phase is Phase.TRUST_BOTH:
        return _consumer_gate(store, consumers, rotation.to_root)
    old = rotation.from_root
    description = f"no live leaf chains to the old root {old}"
    if store.state.external_leaves:
        # istiod issues the leaves: we cannot list them, only wait out their longest life
        switched = rotation.switched_at or rotation.phase_since
        deadline = switched + ttl(store.state.settings.workload_ttl)
        if now < deadline:
            return Gate(
                description,
                False,
                "leaves are issued outside this store; waiting "
                f"the maximum workload TTL after the switch, until {deadline.isoformat()}",
            )
        return Gate(description, True, f"the maximum workload TTL passed at {deadline.isoformat()}")
    remaining = [leaf for leaf in live_leaves(store.state, now) if leaf.root == old]
    if remaining:
        last = max(leaf.not_after for leaf in remaining)
        return Gate(
            description,
            False,
            f"{len(remaining)} live leaf certificate(s) still chain to it "
            f"(the last expires {last.isoformat()}); re-issue them or wait",
        )
    since = rotation.switched_at.isoformat() if rotation.switched_at else "the switch"
    return Gate(description, True, f"every leaf issued before {since} expired or was re-issued")


def _consumer_gate(store: KeyStore, consumers: list[Consumer], new_root: str) -> Gate:
    """Gate 1: every registered consumer reports the new root (acknowledgements from
    consumers nobody registered do not count)."""
    new_fp = store.state.root(new_root).fingerprint
    reports = {consumer.name: consumer.trusted_fingerprints() for consumer in consumers}
    registered = [record.name for record in store.state.consumers]
    description = f"every registered consumer reports the new root {new_root}"
    if not registered:
        return Gate(
            description,
            False,
            "no consumer is registered (`meshd ca consumer add NAME --kind K`)",
        )
    missing = [name for name in registered if new_fp not in reports.get(name, frozenset())]
    if missing:
        return Gate(description, False, "not yet reporting it: " + ", ".join(missing))
    return Gate(description, True, f"all {len(registered)} registered consumer(s) report it")


def git_problem(store: KeyStore, git_trusted: frozenset[str] | None) -> str | None:
    """Why the switch to the new issuer must wait for Git, or None when Git is ready.

    The Mesh document is what meshc renders into every proxy's trust: leaves from the new
    root before Git trusts it would be rejected wherever the rendered config lands."""
    rotation = store.state.rotation
    if rotation is None or rotation.phase is not Phase.TRUST_BOTH:
        return None
    fp = store.state.root(rotation.to_root).fingerprint
    if git_trusted is None:
        return f"the switch to {rotation.to_root} needs the Mesh file to check that Git trusts it"
    if fp not in git_trusted:
        return f"the Mesh document does not trust the new root {rotation.to_root} ({fp}) yet"
    return None


def git_remedy(store: KeyStore) -> str:
    rotation = store.state.rotation
    name = rotation.to_root if rotation else "the new root"
    return (
        f"pass --mesh FILE; write the anchor for {name} with `meshd ca rotate mesh-edit "
        "--mesh FILE --write`, commit and merge it, then advance again"
    )


def start_rotation(store: KeyStore, *, now: datetime, new_name: str | None) -> Step:
    state = store.state
    if state.rotation is not None and state.rotation.phase is not Phase.TRUST_NEW_ONLY:
        raise CAError(
            f"a rotation is already in phase {state.rotation.phase}",
            path=store.state_file,
            remedy="advance it with `meshd ca rotate advance`",
            code=REFUSED,
        )
    name = new_name or _next_name(state)
    if not ROOT_NAME.match(name) or len(name) > 63:
        raise CAError(f"root name {name!r} is not a DNS label", remedy="use e.g. root-2027")
    if any(record.name == name for record in state.roots):
        raise CAError(f"root name {name!r} is already used", remedy="choose another --new-name")
    if not state.consumers:
        raise CAError(
            "no trust-bundle consumer is registered, so gate 1 could not wait for anyone",
            path=store.state_file,
            remedy="register each one with `meshd ca consumer add NAME --kind K` first",
            code=REFUSED,
        )
    old = state.issuer
    record = store.create_root(name, now)
    state.roots.append(record)
    state.trusted = [old, name]
    state.bundle_sequence += 1
    state.rotation = Rotation(
        from_root=old, to_root=name, phase=Phase.TRUST_BOTH, started_at=now, phase_since=now
    )
    state.record(now, f"rotation {old} -> {name}: trust-both")
    store.save()
    return Step(
        f"prepared new root {name} ({record.fingerprint}); phase trust-both: the "
        f"bundle trusts {old} and {name}, {old} still issues"
    )


def _next_name(state: State) -> str:
    used = {record.name for record in state.roots}
    number = len(state.roots) + 1
    while f"root-{number}" in used:
        number += 1
    return f"root-{number}"


def advance(
    store: KeyStore,
    consumers: list[Consumer],
    *,
    now: datetime,
    force: bool,
    git_trusted: frozenset[str] | None = None,
) -> Step:
    """Move the rotation in progress one phase on, if its gate holds (or `force`).

    `git_trusted`: the fingerprints the Mesh document in Git trusts. The switch to the new
    issuer is refused until they include the new root, even with `force`: forcing skips a
    wait, never a step that would break every peer."""
    rotation = store.state.rotation
    gate = next_gate(store, consumers, now)
    if rotation is None or gate is None:
        finished = rotation is not None
        raise CAError(
            "nothing to advance: the last rotation is complete"
            if finished
            else "no rotation in progress",
            remedy="start one with `meshd ca rotate start`",
            code=REFUSED,
        )
    skipped = ""
    if not gate.holds:
        if not force:
            raise CAError(
                f"gate not met: {gate.description}: {gate.detail}",
                remedy="retry once it holds, or use --force in an emergency",
                code=REFUSED,
            )
        skipped = f"--force skips the gate '{gate.description}' ({gate.detail})"
    problem = git_problem(store, git_trusted)
    if problem is not None:
        raise CAError(problem, remedy=git_remedy(store), code=REFUSED)
    if skipped:
        rotation.forced.append(f"{rotation.phase}: {gate.description}")
    if rotation.phase is Phase.TRUST_BOTH:
        step = _switch_issuer(store, now)
    else:
        step = _drop_old(store, now)
    return Step(step, skipped)


def _switch_issuer(store: KeyStore, now: datetime) -> str:
    state = store.state
    rotation = state.rotation
    assert rotation is not None
    store.intermediate_key(rotation.to_root)  # refuse now, not at the next issue, if unusable
    state.issuer = rotation.to_root
    rotation.phase = Phase.ISSUE_FROM_NEW
    rotation.phase_since = now
    rotation.switched_at = now
    state.record(now, f"rotation {rotation.from_root} -> {rotation.to_root}: issue-from-new")
    store.save()
    return (
        f"phase issue-from-new: {rotation.to_root} issues; the bundle still trusts "
        f"{rotation.from_root} and {rotation.to_root}"
    )


def _drop_old(store: KeyStore, now: datetime) -> str:
    state = store.state
    rotation = state.rotation
    assert rotation is not None
    old = rotation.from_root
    # Copy the old root key to the archive first: the state commit then only has to drop
    # the live copies, which open_store finishes if we crash in between.
    live_key = store.root_key_path(old)
    archived = store.archive_key_path(old)
    if live_key.exists():
        ensure_private_dir(archived.parent)
        atomic_write(archived, live_key.read_bytes())
        checkpoint("archive-key-written")
    state.root(old).archived = True
    state.trusted = [rotation.to_root]
    state.bundle_sequence += 1
    rotation.phase = Phase.TRUST_NEW_ONLY
    rotation.phase_since = now
    state.record(now, f"rotation {old} -> {rotation.to_root}: trust-new-only; {old} archived")
    store.save()
    from reconciler.ca.store import finish_archiving

    finish_archiving(store)
    return f"phase trust-new-only: the bundle trusts {rotation.to_root} only; {old}'s key archived"


def renew_intermediates(store: KeyStore, *, now: datetime, force: bool = False) -> list[str]:
    """Renew every active root's intermediate within `renewBefore` of its expiry."""
    lead = ttl(store.state.settings.renew_before)
    renewed: list[str] = []
    for record in store.state.active_roots():
        current = store.intermediate_cert(record.name)
        if not force and current.not_valid_after_utc - now > lead:
            continue
        root = store.root_cert(record.name)
        if root.not_valid_after_utc <= now:
            raise CAError(
                f"root {record.name} expired at {root.not_valid_after_utc.isoformat()}",
                path=store.root_cert_path(record.name),
                remedy="rotate to a new root with `meshd ca rotate start`",
                code=REFUSED,
            )
        number = store.renew_intermediate(record.name, now)
        record.intermediate = number
        store.state.record(now, f"intermediate {number} of {record.name} issued")
        store.save()
        renewed.append(f"renewed the intermediate of {record.name} (now #{number})")
    return renewed


def auto_advance(
    store: KeyStore,
    consumers: list[Consumer],
    *,
    now: datetime,
    git_trusted: frozenset[str] | None = None,
) -> list[str]:
    """Automatic mode: renew intermediates, then advance while gates hold (and Git trusts
    the new root before the switch). Never starts a rotation and never forces."""
    done = renew_intermediates(store, now=now)
    while True:
        gate = next_gate(store, consumers, now)
        if gate is None or not gate.holds or git_problem(store, git_trusted) is not None:
            return done
        step = advance(store, consumers, now=now, force=False, git_trusted=git_trusted)
        done.append(step.summary)
