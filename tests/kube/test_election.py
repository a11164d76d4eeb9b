"""Leader election on a Lease: two candidates over HTTP, never both leaders at once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.cli import main as meshd
from reconciler.kube.client import Cluster, load_configuration
from reconciler.kube.election import LeaderElector, LeaseConfig, NotLeader
from reconciler.kube.target import CheckedTarget
from reconciler.loop import Reconciler
from reconciler.source.git import GitRepositorySource
from reconciler.targets.kubernetes import KubernetesTarget
from tests.kube.conftest import FAST, Kube
from tests.kube.seeding import seed_cluster
from tests.run.support import EXTRA_SERVICE, commit_file, policy_repo
from tests.xds.support import new_ca

NAMESPACE = "istio-system"


class Clock:
    """A monotonic clock the test moves (both candidates read the same one)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def candidates(kube: Kube, clock: Any, name: str, **timing: float) -> Iterator[list[LeaderElector]]:
    """Two replicas, each with its own connection to the API server."""
    clusters = [Cluster(load_configuration(kube.kubeconfig, None), FAST) for _ in range(2)]
    config = {"duration": 10.0, "renew_deadline": 8.0, "retry_period": 2.0, **timing}
    try:
        yield [
            LeaderElector(
                cluster, LeaseConfig(name, NAMESPACE, f"meshd-{index}", **config), clock=clock
            )
            for index, cluster in enumerate(clusters)
        ]
    finally:
        for cluster in clusters:
            cluster.close()
        with contextlib.suppress(Exception):
            kube.delete("coordination.k8s.io/v1", "Lease", NAMESPACE, name)


def lease(kube: Kube, name: str) -> dict[str, Any]:
    found = kube.read("coordination.k8s.io/v1", "Lease", NAMESPACE, name)
    assert found is not None
    spec: dict[str, Any] = found["spec"]
    return spec


def one_leader(electors: list[LeaderElector]) -> None:
    assert sum(e.is_leader for e in electors) <= 1, [e.config.identity for e in electors]


def test_failover_only_after_the_lease_expires(kube: Kube) -> None:
    clock = Clock()
    with candidates(kube, clock, "meshd-failover") as (first, second):
        assert first.step() is True
        assert second.step() is False
        one_leader([first, second])
        held = lease(kube, "meshd-failover")
        assert held["holderIdentity"] == "meshd-0"
        assert held["leaseDurationSeconds"] == 10 and held["leaseTransitions"] == 0
        with pytest.raises(NotLeader, match="meshd-0 holds it"):
            second.ensure_leader()

        for _ in range(3):  # the leader renews; the follower keeps waiting
            clock.now += 2
            assert first.step() is True
            assert second.step() is False
            one_leader([first, second])
        renewed = lease(kube, "meshd-failover")
        assert renewed["renewTime"] > held["renewTime"]
        assert renewed["acquireTime"] == held["acquireTime"]

        # The leader stops renewing (hung, partitioned): it stops writing at its renew
        # deadline, and only a whole lease duration later may the follower take over.
        taken_at = None
        for tick in range(1, 16):
            clock.now += 1
            if second.step():
                taken_at = tick
                break
            one_leader([first, second])
        assert taken_at is not None and taken_at >= 10
        assert not first.is_leader
        one_leader([first, second])
        after = lease(kube, "meshd-failover")
        assert after["holderIdentity"] == "meshd-1"
        assert after["leaseTransitions"] == 1
        assert after["acquireTime"] > held["acquireTime"]

        # The old leader comes back: it sees a live claim and stays a follower.
        assert first.step() is False
        one_leader([first, second])


def test_a_stale_update_is_a_409_and_the_candidate_loses(kube: Kube) -> None:
    clock = Clock()
    with candidates(kube, clock, "meshd-race") as (first, second):
        assert first.step() is True
        clock.now += 30  # the leader vanished; both candidates see an expired Lease
        first._renewed_at = None
        seen = []
        for elector in (first, second):
            live = elector._read()
            assert live is not None
            elector._observe(live, clock.now - 30)
            seen.append(live)
        assert first._write(first._record(seen[0]), create=False) is True
        assert second._write(second._record(seen[1]), create=False) is False  # stale
        assert lease(kube, "meshd-race")["holderIdentity"] == "meshd-0"


def test_a_409_storm_never_makes_two_leaders(kube: Kube) -> None:
    if kube.stand_in is None:
        pytest.skip("fault injection needs the stand-in")
    clock = Clock()
    with candidates(kube, clock, "meshd-storm") as electors:
        assert electors[0].step() is True
        storm = kube.stand_in.fail(method="PUT", plural="leases", status=409, times=12)
        for _ in range(30):
            clock.now += 1
            for elector in electors:
                elector.step()
                one_leader(electors)
        assert storm.hits == 12
        assert sum(e.is_leader for e in electors) == 1  # the storm passed: one leads again
        holder = lease(kube, "meshd-storm")["holderIdentity"]
        assert [e.config.identity for e in electors if e.is_leader] == [holder]


def test_a_leader_that_cannot_reach_the_api_server_steps_down(kube: Kube) -> None:
    if kube.stand_in is None:
        pytest.skip("fault injection needs the stand-in")
    clock = Clock()
    with candidates(kube, clock, "meshd-outage") as (leader, _):
        assert leader.step() is True
        kube.stand_in.fail(plural="leases", status=503, times=1000)
        clock.now += 7
        assert leader.step() is True  # renew failed, still within the renew deadline
        clock.now += 1.5
        assert leader.step() is False  # past it: stops writing before the Lease expires
        with pytest.raises(NotLeader):
            leader.ensure_leader()


def test_two_running_replicas_fail_over_in_real_time(kube: Kube) -> None:
    """Both run their loops on threads; a monitor checks every 10 ms that at most one
    leads; the leader is killed (its loop stops, nothing released: the Lease just stops
    being renewed); the other takes over."""
    with candidates(
        kube, time.monotonic, "meshd-live", duration=1.0, renew_deadline=0.7, retry_period=0.1
    ) as electors:
        stops = [threading.Event(), threading.Event()]
        threads = [
            threading.Thread(target=e.run, args=(s,), kwargs={"release": False}, daemon=True)
            for e, s in zip(electors, stops, strict=True)
        ]
        for thread in threads:
            thread.start()
        checks = 0

        def watch(seconds: float) -> None:
            nonlocal checks
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                one_leader(electors)
                checks += 1
                time.sleep(0.01)

        watch(0.6)
        leaders = [e for e in electors if e.is_leader]
        assert len(leaders) == 1
        dead = electors.index(leaders[0])
        stops[dead].set()
        threads[dead].join(5)
        survivor = electors[1 - dead]
        for _ in range(300):
            watch(0.01)
            if survivor.is_leader:
                break
        assert survivor.is_leader and checks > 40
        stops[1 - dead].set()
        threads[1 - dead].join(5)
        survivor.release()
        assert not survivor.is_leader
        assert lease(kube, "meshd-live")["holderIdentity"] == ""
        assert lease(kube, "meshd-live")["leaseTransitions"] == 1


# -- meshd run --leader-elect ---------------------------------------------------------


def _state_target(state: Path) -> str:
    import json

    target: str = json.loads((state / "state.json").read_text())["target"]
    return target


def _run_args(repo: Path, state: Path, kubeconfig: Path, identity: str) -> list[str]:
    return [
        "run",
        "--repo",
        str(repo),
        "--path",
        "policies",
        "--target",
        "kubernetes",
        "--kubeconfig",
        str(kubeconfig),
        "--state",
        str(state),
        "--once",
        "--leader-elect",
        "--lease-namespace",
        NAMESPACE,
        "--identity",
        identity,
    ]


def test_a_follower_compiles_and_writes_nothing(tmp_path: Path, standin_kube: Kube) -> None:
    assert standin_kube.stand_in is not None
    seed_cluster(standin_kube.stand_in)
    repo = policy_repo(tmp_path / "repo")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    held = {
        "holderIdentity": "meshd-elsewhere",
        "leaseDurationSeconds": 15,
        "renewTime": now,
        "acquireTime": now,
        "leaseTransitions": 0,
    }
    standin_kube.stand_in.seed(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "meshd", "namespace": NAMESPACE},
            "spec": held,
        }
    )
    args = _run_args(repo, tmp_path / "follower", standin_kube.kubeconfig, "meshd-here")
    result = CliRunner().invoke(meshd, args)
    assert result.exit_code == 0, result.output
    assert standin_kube.owned() == {}, "a follower wrote to the cluster"
    assert lease(standin_kube, "meshd")["holderIdentity"] == "meshd-elsewhere"
    # Every replica serves xDS: the follower's pass also pushes the control plane it runs.
    new_ca(tmp_path / "ca")
    serving = CliRunner().invoke(
        meshd,
        [*args, "--serve-xds", "--ca-state", str(tmp_path / "ca"), "--xds-listen", "127.0.0.1:0"],
    )
    assert serving.exit_code == 0, serving.output
    assert "+ xds 127.0.0.1:" in _state_target(tmp_path / "follower")
    assert standin_kube.owned() == {}, "a follower serving xDS wrote to the cluster"


def test_the_leader_applies_and_gives_the_lease_up_on_exit(
    tmp_path: Path, standin_kube: Kube
) -> None:
    assert standin_kube.stand_in is not None
    seed_cluster(standin_kube.stand_in)
    repo = policy_repo(tmp_path / "repo")
    args = _run_args(repo, tmp_path / "leader", standin_kube.kubeconfig, "meshd-here")
    result = CliRunner().invoke(meshd, args)
    assert result.exit_code == 0 and "Applied" in result.output, result.output
    assert standin_kube.owned()
    released = lease(standin_kube, "meshd")
    assert released["holderIdentity"] == "" and released["leaseTransitions"] == 0


def test_a_new_leader_adopts_what_the_old_one_applied_and_prunes_it(
    tmp_path: Path, standin_kube: Kube
) -> None:
    """Replica A applies a revision with `extra`; A dies; B (its own, empty state) takes
    the Lease and applies a revision without `extra`: B prunes what only A had applied."""
    assert standin_kube.stand_in is not None
    seed_cluster(standin_kube.stand_in)
    repo = policy_repo(tmp_path / "repo")
    commit_file(repo, "extra.yaml", EXTRA_SERVICE, "extra")
    first = _run_args(repo, tmp_path / "a", standin_kube.kubeconfig, "meshd-a")
    assert CliRunner().invoke(meshd, [*first, "--no-preflight"]).exit_code == 0
    extra = {p for p in standin_kube.owned() if p.endswith("/extra") or "/extra-" in p}
    assert extra
    commit_file(repo, "extra.yaml", None, "no extra")
    second = _run_args(repo, tmp_path / "b", standin_kube.kubeconfig, "meshd-b")
    result = CliRunner().invoke(meshd, [*second, "--no-preflight"])
    assert result.exit_code == 0, result.output
    assert not extra & set(standin_kube.owned()), "the new leader left the old one's objects"
    assert lease(standin_kube, "meshd")["leaseTransitions"] == 1


def test_a_leader_past_its_renew_deadline_stops_writing_mid_pass(
    tmp_path: Path, standin_kube: Kube
) -> None:
    """The fence is checked before every write, not once per pass: the clock moves one
    second per write here, so the leader runs out of renew deadline part-way through."""
    assert standin_kube.stand_in is not None
    seed_cluster(standin_kube.stand_in)
    ticks = Clock()
    with candidates(standin_kube, ticks, "meshd-fence") as (leader, _):
        assert leader.step() is True
        writes = 0

        def fence() -> None:
            nonlocal writes
            ticks.now += 1
            leader.ensure_leader()
            writes += 1

        target = KubernetesTarget(standin_kube.cluster)
        standin_kube.cluster.fence = fence
        checked = CheckedTarget(target, elector=leader, preflight=False)
        assert 'meshd_leader{lease="istio-system/meshd-fence"} 1' in checked.metrics_text()
        source = GitRepositorySource(
            str(policy_repo(tmp_path / "repo")),
            mirror_dir=tmp_path / "mirror.git",
            path="policies",
        )
        outcome = asyncio.run(Reconciler(source, checked, confirm_timeout=0.1).reconcile())
        assert outcome.reason == "PushFailed" and "not the leader" in outcome.findings[0]
        assert 0 < writes < 8
        applied = len(standin_kube.owned())
        assert 0 < applied <= writes  # the writes let through (Events among them), no more
        assert not leader.is_leader
        assert 'meshd_leader{lease="istio-system/meshd-fence"} 0' in checked.metrics_text()
