"""Faults on the stand-in (a real cluster cannot be made to fail on cue): 500/503, 409,
slow answers, a dropped watch, and `kill -9` mid-apply — the loop converges and loses
nothing. And `meshd run --target kubernetes --once` from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from urllib3.exceptions import ProtocolError

from reconciler import faults
from reconciler.cli import main as meshd
from reconciler.kube.client import Retry
from reconciler.up.credentials import temporary_ca
from tests.kube.conftest import Kube
from tests.kube.support import KubeLoop
from tests.plan.gitrepo import git
from tests.run.support import EXTRA_SERVICE, commit_file, head, meshd_process, policy_repo


def _converged(loop: KubeLoop, kube: Kube) -> None:
    assert set(kube.owned()) == set(loop.desired())
    assert loop.store.load().inventory.keys() == loop.desired().keys()


def test_503s_and_a_409_are_retried_inside_the_pass(tmp_path: Path, standin_kube: Kube) -> None:
    assert standin_kube.stand_in is not None
    unavailable = standin_kube.stand_in.fail(method="PATCH", status=503, times=2)
    conflict = standin_kube.stand_in.fail(method="PATCH", dry_run=False, status=409, times=1)
    loop = KubeLoop(policy_repo(tmp_path / "repo"), tmp_path / "state", standin_kube)
    outcome = loop.run()
    assert outcome.ok and outcome.reason == "Applied", outcome
    assert unavailable.hits == 2 and conflict.hits == 1
    _converged(loop, standin_kube)


def test_a_server_that_keeps_failing_fails_the_pass_then_it_converges(
    tmp_path: Path, standin_kube: Kube
) -> None:
    assert standin_kube.stand_in is not None
    loop = KubeLoop(policy_repo(tmp_path / "repo"), tmp_path / "state", standin_kube)
    loop.run()
    added = commit_file(tmp_path / "repo", "extra.yaml", EXTRA_SERVICE, "B: add extra")
    broken = standin_kube.stand_in.fail(method="PATCH", dry_run=False, status=500, times=10**6)
    failed = loop.run()
    assert failed.reason == "PushFailed" and not failed.ok
    assert "after 4 attempts" in failed.findings[0] and "500" in failed.findings[0]
    assert loop.store.load().last_applied_revision != added
    broken.times = 0  # the server recovers
    outcome = loop.run()
    assert outcome.ok and outcome.reason == "Applied", outcome
    _converged(loop, standin_kube)


def test_a_slow_server_times_out_and_is_retried(tmp_path: Path, standin_kube: Kube) -> None:
    assert standin_kube.stand_in is not None
    standin_kube.cluster.retry = Retry(attempts=3, base=0.01, cap=0.05, timeout=0.3)
    slow = standin_kube.stand_in.fail(method="PATCH", dry_run=True, delay=1.0, times=2)
    loop = KubeLoop(policy_repo(tmp_path / "repo"), tmp_path / "state", standin_kube)
    outcome = loop.run()
    assert outcome.ok, outcome
    assert slow.hits == 2
    _converged(loop, standin_kube)


def test_a_dropped_watch_resumes_from_its_resource_version(
    tmp_path: Path, standin_kube: Kube
) -> None:
    assert standin_kube.stand_in is not None
    loop = KubeLoop(policy_repo(tmp_path / "repo"), tmp_path / "state", standin_kube)
    assert loop.run().ok
    wanted = {p.rsplit("/", 1)[1] for p in loop.desired() if "/AuthorizationPolicy/" in p}
    drop = standin_kube.stand_in.fail(
        method="GET", plural="authorizationpolicies", watch=True, drop_after=2
    )
    cluster = standin_kube.cluster
    resource = cluster.resource("security.istio.io/v1", "AuthorizationPolicy")
    seen: dict[str, str] = {}
    version = "1"
    for _ in range(2):  # the first stream drops after two events; resume where it stopped
        try:
            for event in cluster.dynamic.watch(
                resource, namespace="bookinfo", resource_version=version, timeout=1
            ):
                meta = event["raw_object"]["metadata"]
                seen[meta["name"]] = meta["resourceVersion"]
                version = meta["resourceVersion"]
        except ProtocolError:
            pass
    assert drop.hits == 1
    assert set(seen) == wanted


def _cli_args(repo: Path, tmp: Path, kubeconfig: Path) -> list[str]:
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
        str(tmp / "state"),
        "--once",
        "--no-preflight",  # the stand-in has no CRDs or workloads: test_preflight.py has them
    ]


def test_meshd_run_once_converges_and_applies_cacerts(tmp_path: Path, standin_kube: Kube) -> None:
    repo = policy_repo(tmp_path / "repo")
    ca = temporary_ca(tmp_path / "ca", "cluster.local", datetime.now(UTC))
    args = [*_cli_args(repo, tmp_path, standin_kube.kubeconfig), "--ca-state", str(tmp_path / "ca")]
    result = CliRunner().invoke(meshd, args)
    assert result.exit_code == 0, result.output
    assert "Applied" in result.output and "Traceback" not in result.output
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["last_applied_revision"] == head(repo)
    secret = standin_kube.read("v1", "Secret", "istio-system", "cacerts")
    assert secret is not None
    key = ca.cacerts(datetime.now(UTC), namespace="istio-system").to_object()["data"]["ca-key.pem"]
    assert secret["data"]["ca-key.pem"] == key
    printed = result.output + json.dumps(state) + json.dumps(standin_kube.events("istio-system"))
    assert key not in printed and "cacerts" not in json.dumps(state["inventory"])
    again = CliRunner().invoke(meshd, args)
    assert again.exit_code == 0 and "Unchanged" in again.output, again.output


class Crash(BaseException):
    """Raised where the process would die (`MESHD_CRASH_AT`), for the in-process case."""


def _once(args: list[str]) -> int:
    result = CliRunner().invoke(meshd, args)
    assert "Traceback" not in result.output
    return result.exit_code


def test_kill_9_mid_apply_then_restart_converges_and_leaks_nothing(
    tmp_path: Path, standin_kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = policy_repo(tmp_path / "repo")
    args = _cli_args(repo, tmp_path, standin_kube.kubeconfig)
    killed = meshd_process(*args, env={faults.ENV: "kubernetes-apply-7"})
    assert killed.wait(60) == 137, killed.communicate()
    assert 0 < len(standin_kube.owned()) < 20  # half applied, the state never saved
    assert _once(args) == 0
    after_a = standin_kube.owned()
    assert len(after_a) == 20
    # Killed after creating part of B, whose state was never saved; then B is reverted:
    # the journal beside the state lets the next pass prune what the killed one created.
    added = commit_file(repo, "extra.yaml", EXTRA_SERVICE, "B: add extra")

    def die(code: int) -> None:
        raise Crash(code)

    monkeypatch.setattr(faults, "_die", die)
    monkeypatch.setenv(faults.ENV, "kubernetes-apply-2")
    with pytest.raises(Crash):
        CliRunner().invoke(meshd, args, catch_exceptions=False)
    monkeypatch.delenv(faults.ENV)
    assert set(standin_kube.owned()) - set(after_a), "the killed pass created some of B"
    git(repo, "revert", "--no-edit", added)
    assert _once(args) == 0
    assert standin_kube.owned() == after_a
