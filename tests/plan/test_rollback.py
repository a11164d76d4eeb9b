"""`meshc rollback`: the revert is planned, refused when unsafe, and committed exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import cli
from tests.plan.gitrepo import GIT_ENV, bookinfo_repo, commit_all, edit, git, widen_reviews
from tests.plan.runner import NOW, Outcome


@pytest.fixture(autouse=True)
def _identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)


def rollback(repo: Path, *args: str) -> Outcome:
    result = CliRunner().invoke(
        cli, ["rollback", "--now", NOW, "--repo", str(repo / "policies"), *args]
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"meshc rollback raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return Outcome(result.exit_code, result.stdout, result.stderr)


def test_revert_restores_the_tree_before_the_commit(tmp_path: Path) -> None:
    repo, first = bookinfo_repo(tmp_path / "r")
    widen_reviews(repo)
    second = commit_all(repo, "B: widen reviews")
    outcome = rollback(repo, second)
    assert outcome.code == 0, outcome.err
    assert "ratings" in outcome.out  # the plan names the access edge the revert removes
    head = git(repo, "rev-parse", "HEAD")
    assert git(repo, "rev-parse", "HEAD^") == second
    assert git(repo, "rev-parse", "HEAD^{tree}") == git(repo, "rev-parse", f"{first}^{{tree}}")
    assert f"This reverts commit {second}." in git(repo, "log", "-1", "--format=%B", head)
    assert git(repo, "status", "--porcelain") == ""


def test_dry_run_makes_no_commit(tmp_path: Path) -> None:
    repo, _ = bookinfo_repo(tmp_path / "r")
    widen_reviews(repo)
    second = commit_all(repo, "B")
    outcome = rollback(repo, second, "--dry-run")
    assert outcome.code == 0 and "no commit made" in outcome.err
    assert git(repo, "rev-parse", "HEAD") == second


def test_dirty_worktree_is_refused(tmp_path: Path) -> None:
    repo, _ = bookinfo_repo(tmp_path / "r")
    widen_reviews(repo)
    second = commit_all(repo, "B")
    edit(repo / "policies" / "ratings.yaml", "# yaml", "# dirty\n# yaml")
    outcome = rollback(repo, second)
    assert outcome.code == 2 and "uncommitted changes" in outcome.err
    assert git(repo, "rev-parse", "HEAD") == second


def test_revert_that_does_not_compile_is_refused(tmp_path: Path) -> None:
    repo, _ = bookinfo_repo(tmp_path / "r")
    extra = repo / "policies" / "extra.yaml"
    extra.write_text(
        "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: extra, namespace: bookinfo}\n"
        "spec:\n  ports: [{name: http, port: 80, protocol: http}]\n"
    )
    adds = commit_all(repo, "B: add extra")
    edit(
        repo / "policies" / "ratings.yaml",
        "    v1: {labels: {version: v1}}\n",
        "    v1: {labels: {version: v1}}\n  calls: [extra]\n",
    )
    uses = commit_all(repo, "C: ratings calls extra")
    outcome = rollback(repo, adds)
    assert outcome.code == 2 and "does not compile" in outcome.err
    assert git(repo, "rev-parse", "HEAD") == uses
    assert git(repo, "worktree", "list").count("\n") == 0  # the scratch worktree is gone


def test_conflicting_revert_and_merge_without_mainline(tmp_path: Path) -> None:
    repo, _ = bookinfo_repo(tmp_path / "r")
    ratings = repo / "policies" / "ratings.yaml"
    widen_reviews(repo)
    second = commit_all(repo, "B")
    edit(repo / "policies" / "reviews.yaml", "split: {v1: 50, v3: 50}", "split: {v1: 60, v3: 40}")
    commit_all(repo, "C")
    outcome = rollback(repo, second)
    assert outcome.code == 2 and "does not revert cleanly" in outcome.err
    git(repo, "checkout", "-q", "-b", "side")
    edit(ratings, "# yaml", "# side\n# yaml")
    commit_all(repo, "D")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    merged = git(repo, "rev-parse", "HEAD")
    outcome = rollback(repo, merged)
    assert outcome.code == 2 and "--mainline" in outcome.err
    assert rollback(repo, merged, "--mainline", "1").code == 0


def test_unknown_revision(tmp_path: Path) -> None:
    repo, _ = bookinfo_repo(tmp_path / "r")
    outcome = rollback(repo, "no-such-ref")
    assert outcome.code == 2 and "no-such-ref" in outcome.err
