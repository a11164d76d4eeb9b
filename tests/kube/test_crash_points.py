"""A process killed at any write of a pass (an apply or a prune) loses nothing: a fresh
process on the same state converges to exactly what an uninterrupted run holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import faults
from tests.kube.conftest import Kube
from tests.kube.support import KubeLoop
from tests.plan.gitrepo import git
from tests.run.support import EXTRA_SERVICE, commit_file, policy_repo


class Crash(BaseException):
    """Raised where the process would die."""


def _crashing(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    def die(code: int) -> None:
        raise Crash(code)

    monkeypatch.setattr(faults, "_die", die)
    monkeypatch.setenv(faults.ENV, point)


@pytest.mark.parametrize("point", ["kubernetes-apply-1", "kubernetes-apply-13"])
def test_killed_during_the_first_apply(
    tmp_path: Path, standin_kube: Kube, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    repo = policy_repo(tmp_path / "repo")
    _crashing(monkeypatch, point)
    with pytest.raises(Crash):
        KubeLoop(repo, tmp_path / "state", standin_kube).run()
    monkeypatch.delenv(faults.ENV)
    restarted = KubeLoop(repo, tmp_path / "state", standin_kube)
    outcome = restarted.run()
    assert outcome.ok, outcome
    assert set(standin_kube.owned()) == set(restarted.desired())
    assert restarted.store.load().inventory.keys() == restarted.desired().keys()


def test_killed_during_a_prune(
    tmp_path: Path, standin_kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = policy_repo(tmp_path / "repo")
    loop = KubeLoop(repo, tmp_path / "state", standin_kube)
    assert loop.run().ok
    before = standin_kube.owned()
    added = commit_file(repo, "extra.yaml", EXTRA_SERVICE, "B: add extra")
    assert loop.run().ok
    grown = set(standin_kube.owned()) - set(before)
    assert len(grown) >= 2
    git(repo, "revert", "--no-edit", added)
    _crashing(monkeypatch, "kubernetes-prune-2")  # the revert applies nothing: prunes only
    with pytest.raises(Crash):
        KubeLoop(repo, tmp_path / "state", standin_kube).run()
    monkeypatch.delenv(faults.ENV)
    assert 0 < len(set(standin_kube.owned()) - set(before)) < len(grown)  # pruned half
    restarted = KubeLoop(repo, tmp_path / "state", standin_kube)
    outcome = restarted.run()
    assert outcome.ok, outcome
    assert standin_kube.owned() == before
    assert set(restarted.store.load().inventory) == set(before)
