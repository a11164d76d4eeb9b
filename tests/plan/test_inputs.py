"""Bad input to `meshc plan`: clear messages and exit 2, never a traceback; the worktree
and the index are never written."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.plan.gitrepo import bookinfo_repo, commit_all, edit, git, init_repo, widen_reviews
from tests.plan.runner import Outcome, meshc_plan


def plan_policies(root: Path, base: str, *flags: str) -> Outcome:
    """`meshc plan` of `root`'s policies directory from `base` to the branch main."""
    return meshc_plan(
        "--base", base, "--head", "main", "--repo", str(root), "--path", "policies", *flags
    )


def test_missing_ref_is_named(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    result = meshc_plan("--base", "no-such-branch", "--repo", str(root), "--path", "policies")
    assert result.code == 2
    assert "no-such-branch: no such branch, tag or commit" in result.err
    assert result.out == ""


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    result = meshc_plan("--base", "main", "--repo", str(tmp_path / "plain"))
    assert result.code == 2
    assert "not a Git repository" in result.err and "--repo" in result.err


def test_missing_repo_directory(tmp_path: Path) -> None:
    result = meshc_plan("--base", "main", "--repo", str(tmp_path / "absent"))
    assert result.code == 2
    assert "no such directory" in result.err


def test_path_missing_in_base(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    result = meshc_plan("--base", "main", "--head", "main", "--repo", str(root), "--path", "nope")
    assert result.code == 2
    assert "has no directory 'nope'; check --path" in result.err


def test_path_escaping_the_repository_is_refused(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    result = meshc_plan("--base", "main", "--repo", str(root), "--path", "../outside")
    assert result.code == 2
    assert "must be a relative path inside the repository" in result.err


def test_shallow_clone_lacking_the_base(tmp_path: Path) -> None:
    root, commit_a = bookinfo_repo(tmp_path / "origin")
    widen_reviews(root)
    commit_all(root, "B")
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{root}", str(clone)],
        check=True,
        capture_output=True,
    )
    assert (clone / ".git" / "shallow").is_file()
    result = meshc_plan("--base", commit_a, "--repo", str(clone), "--path", "policies")
    assert result.code == 2
    assert f"{commit_a}: no such commit in this repository; it is a shallow clone" in result.err
    assert "fetch-depth: 0" in result.err


def test_worktree_head_has_uncommitted_and_untracked_but_not_ignored(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    widen_reviews(root)  # uncommitted edit
    (root / "policies" / "extra.yaml").write_text(_CALLER)  # untracked
    (root / ".gitignore").write_text("policies/ignored.yaml\n")
    (root / "policies" / "ignored.yaml").write_text("this: [is not: valid yaml\n")
    index = root / ".git" / "index"
    before = (hashlib.sha256(index.read_bytes()).hexdigest(), index.stat().st_mtime_ns)
    status_before = git(root, "status", "--porcelain")
    result = meshc_plan("--base", "main", "--repo", str(root / "policies"), "--format", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["head"] == {"ref": "worktree", "commit": None, "compiles": True, "findings": []}
    added = {e["text"] for e in doc["meaning"]["allowed"]["added"]}
    assert added == {"ratings → reviews GET /reviews/*", "extra → details GET /details/*"}
    assert (hashlib.sha256(index.read_bytes()).hexdigest(), index.stat().st_mtime_ns) == before
    assert git(root, "status", "--porcelain") == status_before


_CALLER = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: extra, namespace: bookinfo}
spec:
  ports: [{name: http, port: 9080, targetPort: 9080, protocol: http}]
  versions: {v1: {labels: {version: v1}}}
  calls: [details]
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: details-extra, namespace: bookinfo}
spec:
  service: details
  rules:
  - from: [{service: extra}]
    to: {methods: [GET], paths: ["/details/*"]}
"""


def test_git_tree_reading_honours_excludes_and_dot_directories(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    policies = root / "policies"
    (policies / "meshc.yaml").write_text("exclude: [vendor/]\n")
    (policies / "vendor").mkdir()
    (policies / "vendor" / "broken.yaml").write_text("{{{ not yaml\n")
    (policies / ".hidden").mkdir()
    (policies / ".hidden" / "broken.yaml").write_text("{{{ not yaml\n")
    (policies / "notes.txt").write_text("not yaml at all \x00")
    commit_all(root, "excluded junk")
    result = plan_policies(root, "main~1", "--detailed-exitcode")
    assert result.code == 0, result.out + result.err
    assert "Plan: no changes" in result.out


def test_binary_and_huge_files_make_head_fail_with_findings(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    (root / "policies" / "blob.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (root / "policies" / "huge.yaml").write_bytes(b"# " + b"x" * (4 * 1024 * 1024 + 10) + b"\n")
    commit_all(root, "binary and huge")
    result = plan_policies(root, "main~1")
    assert result.code == 2
    assert "head (main) does not compile" in result.out
    assert "blob.yaml:" in result.out and "huge.yaml:" in result.out
    assert "larger than the 4194304-byte limit" in result.out
    assert "head does not compile" in result.err
    # the files read after the huge blob (same cat-file pipe) are intact: only the two fail
    doc = json.loads(plan_policies(root, "main~1", "--format", "json").out)
    assert {f["file"] for f in doc["head"]["findings"]} == {"blob.yaml", "huge.yaml"}


def test_broken_base_shows_head_as_new_with_a_banner_and_exits_2(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    (root / "policies").mkdir()
    (root / "policies" / "mesh.yaml").write_text(
        "apiVersion: meshc/v1\nkind: Mesh\nspec: {mtls: {mode: strct}}\n"
    )
    base = commit_all(root, "broken")
    subprocess.run(["cp", "-r", str(Path(__file__).parents[2] / "policies"), str(root)], check=True)
    commit_all(root, "fixed")
    text = plan_policies(root, base, "--detailed-exitcode")
    assert text.code == 2, text.err
    assert f"base ({base}) does not compile; head is shown against an empty base" in text.err
    assert "Traceback" not in text.err
    assert (
        "note: base (" in text.out
        and "does not compile: everything head holds is shown as new" in text.out
    )
    assert f"base ({base}) does not compile; its findings:" in text.out
    assert "mesh.yaml:" in text.out
    doc = json.loads(plan_policies(root, base, "--format", "json").out)
    assert doc["ok"] is True and doc["base"]["compiles"] is False and doc["base"]["findings"]
    assert doc["resources"] and {r["action"] for r in doc["resources"]} == {"created"}
    markdown = plan_policies(root, base, "--format", "markdown").out
    assert "**base does not compile**: head's resources are shown as all new." in markdown


def test_broken_head_exits_2_and_shows_its_findings(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    edit(root / "policies" / "reviews.yaml", "calls: [ratings]", "calls: [ratingz]")
    result = meshc_plan(
        "--base", "main", "--repo", str(root), "--path", "policies", "--format", "json"
    )
    assert result.code == 2
    doc = json.loads(result.out)
    assert doc["ok"] is False and doc["meaning"] is None and doc["resources"] is None
    [finding] = [f for f in doc["head"]["findings"] if f["severity"] == "error"]
    assert finding["file"] == "reviews.yaml" and "ratingz" in finding["message"]


def test_bad_rollout_state_and_ca_status_files(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    state = tmp_path / "state.json"
    state.write_text('{"bookinfo/reviews": "two"}')
    result = meshc_plan(
        "--base", "main", "--repo", str(root), "--path", "policies", "--rollout-state", str(state)
    )
    assert result.code == 2 and "is not a step index" in result.err, result.err
    status = tmp_path / "ca.json"
    status.write_text("{not json")
    result = meshc_plan(
        "--base", "main", "--repo", str(root), "--path", "policies", "--ca-status", str(status)
    )
    assert result.code == 2 and "not JSON" in result.err


def test_ca_status_refusal_through_the_cli(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    old, new = "sha256:" + ":".join(["AA"] * 32), "sha256:" + ":".join(["BB"] * 32)
    mesh = root / "policies" / "mesh.yaml"
    anchors = f"  ca:\n    issuer: new\n    anchors:\n    - {{name: old, fingerprint: '{old}'}}\n"
    edit(
        mesh,
        "  monitoringNamespace: monitoring",
        "  monitoringNamespace: monitoring\n"
        + anchors
        + f"    - {{name: new, fingerprint: '{new}'}}",
    )
    commit_all(root, "trust old and new")
    edit(mesh, f"    - {{name: old, fingerprint: '{old}'}}\n", "")
    status = tmp_path / "ca-status.json"
    status.write_text(
        json.dumps(
            {
                "version": 1,
                "roots": [
                    {
                        "fingerprint": old,
                        "liveLeaves": 3,
                        "maxLeafNotAfter": "2026-11-26T00:00:00Z",
                    },
                    {
                        "fingerprint": new,
                        "liveLeaves": 1,
                        "maxLeafNotAfter": "2026-11-26T00:00:00Z",
                    },
                ],
            }
        )
    )
    result = meshc_plan(
        "--base", "main", "--repo", str(root / "policies"), "--ca-status", str(status)
    )
    assert result.code == 2
    assert "REFUSED (1): head must not be applied" in result.out
    assert f"root {old}: 3 live leaf certificates still chain to it" in result.out
    assert "! trust-anchor-removed: trust anchor old" in result.out
    assert "--ca-status refuses head" in result.err
    without = meshc_plan("--base", "main", "--repo", str(root / "policies"), "--detailed-exitcode")
    assert without.code == 1 and "REFUSED" not in without.out


def test_base_without_the_policy_root_plans_everything_as_new(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    (root / "README.md").write_text("policies come next\n")
    base = commit_all(root, "before policies")
    subprocess.run(["cp", "-r", str(Path(__file__).parents[2] / "policies"), str(root)], check=True)
    result = meshc_plan(
        "--base",
        base,
        "--repo",
        str(root),
        "--path",
        "policies",
        "--format",
        "json",
        "--detailed-exitcode",
    )
    assert result.code == 1, result.err
    doc = json.loads(result.out)
    assert doc["notes"] == [
        f"base ({base}) has no policies directory: everything head holds is new"
    ]
    assert doc["base"]["compiles"] is True
    # mesh-wide objects exist for an empty root too (mesh defaults); the rest is new
    assert {r["kind"] for r in doc["resources"] if r["action"] == "changed"} <= {
        "PeerAuthentication"
    }
    assert sum(r["action"] == "created" for r in doc["resources"]) > 10
    assert "productpage → reviews GET /reviews/*" in {
        e["text"] for e in doc["meaning"]["allowed"]["added"]
    }


def test_repo_pointing_at_a_file(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    result = meshc_plan("--base", "main", "--repo", str(root / "policies" / "mesh.yaml"))
    assert result.code == 2
    assert "meshc plan: " in result.err


def test_plan_reads_the_lint_cache_and_never_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from compiler.cli import cli
    from compiler.cli.plan import _prefill
    from compiler.plan.engine import Planner
    from compiler.plan.source import open_source, read_worktree

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MESHC_NO_CACHE", raising=False)
    root, _ = bookinfo_repo(tmp_path / "repo")
    widen_reviews(root)
    lint = CliRunner().invoke(cli, ["lint", str(root / "policies"), "--fail-on", "error"])
    assert lint.exit_code == 0, lint.output
    cache_dir = root / "policies" / ".meshc_cache"
    stored = {p.name: p.stat().st_mtime_ns for p in cache_dir.iterdir()}
    assert stored, "meshc lint wrote no cache"
    args = [
        "plan",
        "--now",
        "2026-11-25T12:00:00Z",
        "--base",
        "main",
        "--repo",
        str(root / "policies"),
        "--format",
        "json",
    ]
    cached = CliRunner().invoke(cli, args)
    uncached = CliRunner().invoke(cli, [*args, "--no-cache"])
    assert cached.exit_code == uncached.exit_code == 0, cached.output
    assert cached.stdout == uncached.stdout
    assert {p.name: p.stat().st_mtime_ns for p in cache_dir.iterdir()} == stored
    # and the cache is really used: every unchanged file's per-file result is pre-filled
    planner = Planner()
    worktree = read_worktree(open_source(root / "policies", None))
    _prefill(planner, cache_dir, (worktree,))
    assert sorted(name for name, _ in planner.session.files.entries) == sorted(worktree.files)
