"""`meshd run`'s Kubernetes target against an API server over HTTP: staged server-side
apply, no-op passes, drift, pruning by inventory, conflicts, refused revisions."""

from __future__ import annotations

from pathlib import Path

from reconciler.kube.order import WAVES, wave
from reconciler.targets.kubernetes import split_part
from tests.kube.conftest import Kube
from tests.kube.support import KubeLoop, holds
from tests.plan.gitrepo import git
from tests.run.support import EXTRA_SERVICE, commit_file, policy_repo


def _loop(tmp: Path, kube: Kube, **target: object) -> KubeLoop:
    repo = tmp / "repo"
    if not repo.exists():
        policy_repo(repo)
    return KubeLoop(repo, tmp / "state", kube, **target)


def test_first_apply_creates_everything_in_staged_order(tmp_path: Path, kube: Kube) -> None:
    loop = _loop(tmp_path, kube)
    outcome = loop.run()
    assert outcome.ok and outcome.reason == "Applied", outcome
    desired = loop.desired()
    live = kube.owned()
    assert set(live) == set(desired)
    assert all(holds(live[part], obj) for part, obj in desired.items())
    assert sorted(loop.last.created) == sorted(desired)
    waves = [wave(desired[part]) for part in loop.last.order]
    assert waves == sorted(waves), "applied out of stage order"
    if kube.stand_in is not None:  # as the server saw it: creation resourceVersions
        created = sorted(kube.versions().items(), key=lambda item: int(item[1]))
        assert [wave(desired[part]) for part, _ in created] == sorted(waves)
    assert {WAVES[w] for w in waves} >= {"subsets", "routes", "allows", "denials"}
    denials = [p for p in loop.last.order if WAVES[wave(desired[p])] == "denials"]
    allows = [p for p in loop.last.order if WAVES[wave(desired[p])] == "allows"]
    assert loop.last.order.index(denials[0]) > loop.last.order.index(allows[-1])
    assert any(split_part(p)[1] == "AuthorizationPolicy" for p in denials)
    applied = {
        e["involvedObject"]["name"] for e in kube.events("bookinfo") if e["reason"] == "Applied"
    }
    wanted = {split_part(p)[3] for p in desired if split_part(p)[2] == "bookinfo"}
    assert applied == wanted if kube.stand_in else applied >= wanted  # a cluster keeps old ones
    assert loop.store.load().inventory.keys() == desired.keys()


def test_a_second_pass_writes_nothing(tmp_path: Path, kube: Kube) -> None:
    assert _loop(tmp_path, kube).run().ok
    before = kube.versions()
    again = _loop(tmp_path, kube)  # a restarted process: inventory from the state
    outcome = again.run()
    assert outcome.ok and outcome.reason == "Unchanged", outcome
    assert again.last.unchanged == len(before) and not again.last.order
    assert kube.versions() == before


def test_a_hand_edit_is_drift_corrected_and_counted(tmp_path: Path, kube: Kube) -> None:
    loop = _loop(tmp_path, kube)
    assert loop.run().ok
    part = next(p for p in loop.desired() if "/VirtualService/" in p)
    want = loop.desired()[part]
    kube.hand_edit(want, {"hosts": ["somewhere-else"]})
    edited = kube.read(*split_part(part))
    assert edited is not None and edited["spec"]["hosts"] == ["somewhere-else"]
    outcome = loop.run()
    assert outcome.ok, outcome
    assert loop.last.drift_corrected == [part]
    restored = kube.read(*split_part(part))
    assert restored is not None and holds(restored, want)
    assert loop.counters()["drift_corrected"] == 1
    reasons = [
        e["reason"]
        for e in kube.events(split_part(part)[2])
        if e["involvedObject"]["name"] == split_part(part)[3]
    ]
    assert "DriftCorrected" in reasons


def test_a_deleted_object_is_drift_too(tmp_path: Path, kube: Kube) -> None:
    loop = _loop(tmp_path, kube)
    assert loop.run().ok
    part = next(p for p in loop.desired() if "/DestinationRule/" in p)
    kube.delete(*split_part(part))
    assert loop.run().ok
    assert loop.last.drift_corrected == [part]
    assert kube.read(*split_part(part)) is not None


def test_a_removed_intent_prunes_exactly_its_objects(tmp_path: Path, kube: Kube) -> None:
    loop = _loop(tmp_path, kube)
    assert loop.run().ok
    before = kube.owned()
    added = commit_file(tmp_path / "repo", "extra.yaml", EXTRA_SERVICE, "B: add extra")
    assert loop.run().ok
    grown = set(kube.owned())
    assert grown > set(before)
    foreign = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "extra-by-hand", "namespace": "bookinfo"},
        "spec": {"host": "extra"},
    }
    kube.create(foreign)
    # A tampered inventory naming a Namespace and cacerts: neither is ever pruned.
    cacerts = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system"},
        "type": "Opaque",
    }
    if kube.stand_in is not None:  # never in a real cluster's root namespace
        kube.create(cacerts)
    for part in ("v1/Namespace//bookinfo", "v1/Secret/istio-system/cacerts"):
        loop.target.inventory[part] = "0" * 64
    # Someone takes one of extra's objects over (drops meshc's label): never deleted.
    taken = sorted(grown - set(before))[0]
    api_version, kind, namespace, name = split_part(taken)
    unlabelled = {"app.kubernetes.io/managed-by": None}  # a merge patch's removal
    kube.hand_edit(
        {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": unlabelled},
        },
        {},
    )
    git(tmp_path / "repo", "revert", "--no-edit", added)
    outcome = loop.run()
    assert outcome.ok, outcome
    assert sorted(loop.last.pruned) == sorted(grown - set(before) - {taken})
    assert loop.last.released == [taken] and taken not in loop.store.load().inventory
    assert kube.read(*split_part(taken)) is not None
    assert kube.owned() == before
    assert kube.read("networking.istio.io/v1", "DestinationRule", "bookinfo", "extra-by-hand")
    assert kube.read("v1", "Namespace", "", "bookinfo") is not None
    if kube.stand_in is not None:
        assert kube.read("v1", "Secret", "istio-system", "cacerts") is not None
    assert loop.counters()["pruned"] == len(loop.last.pruned)
    pruned_events = {
        (e["involvedObject"]["kind"], e["involvedObject"]["name"])
        for e in kube.events("bookinfo")
        if e["reason"] == "Pruned"
    }
    assert pruned_events == {(split_part(p)[1], split_part(p)[3]) for p in loop.last.pruned}


def test_no_prune_keeps_what_the_revision_dropped(tmp_path: Path, kube: Kube) -> None:
    loop = _loop(tmp_path, kube, prune=False)
    assert loop.run().ok
    added = commit_file(tmp_path / "repo", "extra.yaml", EXTRA_SERVICE, "B: add extra")
    assert loop.run().ok
    grown = kube.owned()
    git(tmp_path / "repo", "revert", "--no-edit", added)
    assert loop.run().ok
    assert kube.owned() == grown and not loop.last.pruned


def test_another_managers_field_is_a_conflict_until_forced(tmp_path: Path, kube: Kube) -> None:
    loop = _loop(tmp_path, kube)
    assert loop.run().ok
    part = next(p for p in loop.desired() if "/VirtualService/" in p)
    want = loop.desired()[part]
    theirs = {
        "apiVersion": want["apiVersion"],
        "kind": want["kind"],
        "metadata": {"name": want["metadata"]["name"], "namespace": want["metadata"]["namespace"]},
        "spec": {"hosts": ["taken-over"]},
    }
    kube.foreign_apply(theirs, "other-gitops")
    outcome = loop.run()
    assert outcome.reason == "Rejected" and not outcome.ok
    assert '"other-gitops"' in outcome.rejected[part] and ".spec.hosts" in outcome.rejected[part]
    assert "--force-conflicts" in outcome.rejected[part]
    live = kube.read(*split_part(part))
    assert live is not None and live["spec"]["hosts"] == ["taken-over"]  # not overwritten
    assert set(outcome.rejected) == {part}  # the other objects went on
    forced = _loop(tmp_path, kube, force_conflicts=True)
    assert forced.run().ok
    live = kube.read(*split_part(part))
    assert live is not None and holds(live, want)


def test_an_object_meshc_never_applied_is_not_taken_over(tmp_path: Path, kube: Kube) -> None:
    loop = _loop(tmp_path, kube)
    assert loop.run().ok
    part = next(p for p in loop.desired() if "/DestinationRule/" in p)
    want = loop.desired()[part]
    kube.delete(*split_part(part))
    kube.create({**want, "spec": {"host": "someone-elses"}})  # kubectl create, by hand
    fresh = KubeLoop(tmp_path / "repo", tmp_path / "other-state", kube)
    outcome = fresh.run()
    assert set(outcome.rejected) == {part}
    assert "conflict" in outcome.rejected[part]
    live = kube.read(*split_part(part))
    assert live is not None and live["spec"] == {"host": "someone-elses"}


def test_a_missing_namespace_is_that_objects_rejection(tmp_path: Path, standin_kube: Kube) -> None:
    standin_kube.delete("v1", "Namespace", "", "bookinfo")
    loop = _loop(tmp_path, standin_kube)
    outcome = loop.run()
    assert outcome.reason == "Rejected"
    desired = loop.desired()
    in_bookinfo = {p for p in desired if split_part(p)[2] == "bookinfo"}
    assert set(outcome.rejected) == in_bookinfo
    for part, message in outcome.rejected.items():
        if WAVES[wave(desired[part])] == "denials":  # never cut traffic before its allows
            assert message.startswith("held back: an allow in this namespace was rejected")
        else:
            assert "namespace bookinfo does not exist; meshc never creates namespaces" in message
    assert set(standin_kube.owned()) == set(desired) - in_bookinfo  # istio-system applied
    assert standin_kube.read("v1", "Namespace", "", "bookinfo") is None


def test_a_broken_commit_leaves_the_last_good_state_applied(tmp_path: Path, kube: Kube) -> None:
    loop = _loop(tmp_path, kube)
    assert loop.run().ok
    before = kube.versions()
    commit_file(tmp_path / "repo", "ratings.yaml", None, "B: remove ratings (still called)")
    outcome = loop.run()
    assert outcome.reason == "CompileFailed"
    assert any("MC201" in f for f in outcome.findings)
    assert kube.versions() == before  # nothing applied, nothing pruned


def test_a_hand_edit_is_taken_back_beside_another_appliers_fields(
    tmp_path: Path, kube: Kube
) -> None:
    loop = _loop(tmp_path, kube)
    assert loop.run().ok
    part = next(p for p in loop.desired() if "/VirtualService/" in p)
    want = loop.desired()[part]
    meta = {"name": want["metadata"]["name"], "namespace": want["metadata"]["namespace"]}
    label = {**meta, "labels": {"team": "payments"}}
    kube.foreign_apply(
        {"apiVersion": want["apiVersion"], "kind": want["kind"], "metadata": label}, "labeller"
    )
    kube.hand_edit(want, {"hosts": ["somewhere-else"]})
    outcome = loop.run()
    assert outcome.ok, outcome
    assert loop.last.drift_corrected == [part]
    live = kube.read(*split_part(part))
    assert live is not None and holds(live, want)
    assert live["metadata"]["labels"]["team"] == "payments"  # the other applier's field stays
