"""`meshd run` on the directory target: the issue's "done means", and its faults."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import cli
from reconciler.cli import main as meshd
from tests.plan.gitrepo import commit_all, edit, git
from tests.run.support import (
    EXTRA_SERVICE,
    commit_file,
    files,
    head,
    meshd_once,
    meshd_process,
    policy_repo,
)


def _render(repo: Path, out: Path) -> dict[str, bytes]:
    result = CliRunner().invoke(cli, ["render", str(repo / "policies"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return files(out)


def _state(tmp: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((tmp / "state" / "state.json").read_text())
    return loaded


def test_once_writes_what_render_writes_and_nothing_else(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path / "repo")
    ran = meshd_once(repo, tmp_path)
    assert ran.code == 0, ran.err
    assert files(tmp_path / "out") == _render(repo, tmp_path / "rendered")
    state = _state(tmp_path)
    assert state["last_applied_revision"] == head(repo)
    assert not list((tmp_path / "out").rglob("*state*"))


def test_revert_restores_the_folder_byte_for_byte(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path / "repo")
    assert meshd_once(repo, tmp_path).code == 0
    before = files(tmp_path / "out")
    added = commit_file(repo, "extra.yaml", EXTRA_SERVICE, "B: add extra")
    assert meshd_once(repo, tmp_path).code == 0
    grown = files(tmp_path / "out")
    assert set(grown) > set(before)
    git(repo, "revert", "--no-edit", added)
    ran = meshd_once(repo, tmp_path)
    assert ran.code == 0, ran.err
    assert files(tmp_path / "out") == before
    counters = _state(tmp_path)["counters"]
    assert isinstance(counters, dict) and counters["pruned"] == len(grown) - len(before)


def test_a_broken_commit_leaves_the_folder_untouched(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path / "repo")
    assert meshd_once(repo, tmp_path).code == 0
    good = head(repo)
    before = {p: (tmp_path / "out" / p).stat().st_mtime_ns for p in files(tmp_path / "out")}
    commit_file(repo, "ratings.yaml", None, "B: remove ratings (reviews still calls it)")
    ran = meshd_once(repo, tmp_path)
    assert ran.code == 1
    assert "CompileFailed" in ran.err and "MC201" in ran.err
    after = {p: (tmp_path / "out" / p).stat().st_mtime_ns for p in files(tmp_path / "out")}
    assert after == before  # nothing written, nothing pruned
    state = _state(tmp_path)
    assert state["last_applied_revision"] == good
    assert state["last_attempted_revision"] == head(repo)
    findings = state["findings"]
    assert isinstance(findings, list) and any("MC201" in str(f) for f in findings)


def test_hand_edits_are_corrected_and_counted(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path / "repo")
    assert meshd_once(repo, tmp_path).code == 0
    before = files(tmp_path / "out")
    victim = tmp_path / "out" / sorted(before)[0]
    victim.write_text("edited by hand\n")
    assert meshd_once(repo, tmp_path).code == 0
    assert files(tmp_path / "out") == before
    counters = _state(tmp_path)["counters"]
    assert isinstance(counters, dict) and counters["drift_corrected"] == 1


def test_no_prune_keeps_what_the_repository_dropped(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path / "repo")
    commit_file(repo, "extra.yaml", EXTRA_SERVICE, "B: add extra")
    assert meshd_once(repo, tmp_path).code == 0
    grown = files(tmp_path / "out")
    commit_file(repo, "extra.yaml", None, "C: drop extra")
    assert meshd_once(repo, tmp_path, "--no-prune").code == 0
    assert files(tmp_path / "out") == grown
    assert meshd_once(repo, tmp_path).code == 0
    assert len(files(tmp_path / "out")) < len(grown)


def test_kill_during_apply_then_restart_converges(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path / "repo")
    args = [
        "run",
        "--repo",
        str(repo),
        "--path",
        "policies",
        "--target",
        "directory",
        "--out",
        str(tmp_path / "out"),
        "--state",
        str(tmp_path / "state"),
        "--once",
    ]
    killed = meshd_process(*args, env={"MESHD_CRASH_AT": "directory-write-7"})
    killed.communicate(timeout=120)
    assert killed.returncode == 137
    partial = files(tmp_path / "out")
    expected = _render(repo, tmp_path / "rendered")
    assert 0 < len([p for p in partial if not p.endswith("meshd-tmp")]) < len(expected)
    resumed = meshd_process(*args)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert files(tmp_path / "out") == expected


def test_a_force_pushed_remote_is_followed(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path / "repo")
    commit_file(repo, "extra.yaml", EXTRA_SERVICE, "B: add extra")
    assert meshd_once(repo, tmp_path).code == 0
    git(repo, "reset", "--hard", "-q", "HEAD~1")
    edit(repo / "policies" / "reviews.yaml", "split: {v1: 90, v3: 10}", "split: {v1: 80, v3: 20}")
    rewritten = commit_all(repo, "B': another history")
    ran = meshd_once(repo, tmp_path)
    assert ran.code == 0, ran.err
    assert _state(tmp_path)["last_applied_revision"] == rewritten
    assert not any(".extra." in p for p in files(tmp_path / "out"))


def test_unreachable_repository_and_bad_flags_are_clear(tmp_path: Path) -> None:
    ran = meshd_once(tmp_path / "nowhere", tmp_path)
    assert ran.code == 1 and "SourceFailed" in ran.err and "nowhere" in ran.err
    repo = policy_repo(tmp_path / "repo")
    inside = CliRunner().invoke(
        meshd,
        [
            "run",
            "--repo",
            str(repo),
            "--target",
            "directory",
            "--out",
            str(tmp_path / "o"),
            "--state",
            str(repo / "state"),
            "--once",
        ],
    )
    assert inside.exit_code in (1, 2) and "inside the Git worktree" in inside.output
    zero = meshd_once(repo, tmp_path, "--interval", "0s")
    assert zero.code == 2 and "--interval" in zero.err


def test_unsigned_commits_are_refused_under_a_signature_policy(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path / "repo")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed"
    allowed.write_text("ops@example.com " + key.with_suffix(".pub").read_text())
    ran = meshd_once(repo, tmp_path, "--allowed-signers", str(allowed))
    assert ran.code == 1 and "signature policy" in ran.err and "not signed" in ran.err
    assert files(tmp_path / "out") == {}


def test_a_full_state_disk_is_reported_and_the_next_pass_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import tempfile

    repo = policy_repo(tmp_path / "repo")
    assert meshd_once(repo, tmp_path).code == 0
    saved = (tmp_path / "state" / "state.json").read_bytes()
    added = commit_file(repo, "extra.yaml", EXTRA_SERVICE, "B")

    def full(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    ran = meshd_once(repo, tmp_path)
    assert "cannot save the reconciler's state (No space left on device)" in ran.out + ran.err
    assert (tmp_path / "state" / "state.json").read_bytes() == saved
    monkeypatch.undo()
    assert meshd_once(repo, tmp_path).code == 0
    assert _state(tmp_path)["last_applied_revision"] == added
