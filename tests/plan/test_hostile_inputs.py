"""Hostile input to `meshc plan`: odd refs, paths, trees, files and flags each give exit 2
with a one-line "meshc plan: <subject>: <problem>; <remedy>" (or a located finding of the
side that holds the bad file), never a traceback, and nothing on stdout for a bad input.

Complements test_inputs.py (missing ref, not a repository, shallow clone, binary and huge
files, broken base, bad status files), which these tests do not repeat."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.plan.gitrepo import bookinfo_repo, commit_all, git, init_repo, widen_reviews
from tests.plan.runner import NOW, Outcome, meshc_plan

SECRET_PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    "-----END PRIVATE KEY-----"
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bookinfo at commit A on main, plus a tag, a lightweight/branch name clash and a
    branch with odd characters; tests only read it."""
    root, _ = bookinfo_repo(tmp_path_factory.mktemp("hostile") / "repo")
    git(root, "tag", "-a", "v1", "-m", "release v1")
    git(root, "branch", "clash")
    (root / "README.md").write_text("second commit\n")
    commit_all(root, "B: readme")
    git(root, "tag", "clash")  # a tag named like the branch, on another commit
    git(root, "branch", "feature/ü-#1")
    return root


def bad_input(result: Outcome, *needles: str) -> None:
    """Exit 2, one `meshc plan:` line naming the problem, nothing on stdout."""
    assert result.code == 2, result.err
    assert result.out == "", result.out
    assert result.err.startswith("meshc plan: "), result.err
    assert result.err.count("\n") == 1, result.err
    for needle in needles:
        assert needle in result.err, (needle, result.err)


def plan(root: Path, *args: str) -> Outcome:
    return meshc_plan("--repo", str(root), "--path", "policies", *args)


# --- revisions ---------------------------------------------------------------------------


def test_empty_repository_says_it_has_no_commits(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "empty")
    result = meshc_plan("--base", "HEAD", "--repo", str(root))
    bad_input(result, "HEAD: the repository has no commits yet", "commit the policy root first")


@pytest.mark.parametrize("kind", ["tree", "blob"])
def test_base_naming_a_tree_or_a_blob_is_refused(repo: Path, kind: str) -> None:
    spec = "HEAD^{tree}" if kind == "tree" else "HEAD:policies/mesh.yaml"
    object_id = git(repo, "rev-parse", spec)
    result = plan(repo, "--base", object_id)
    bad_input(result, f"{object_id}: names a {kind}, not a commit", "pass a branch, tag or commit")


def test_annotated_tag_and_odd_branch_names_resolve(repo: Path) -> None:
    tagged = plan(repo, "--base", "v1", "--head", "feature/ü-#1", "--format", "json")
    assert tagged.code == 0, tagged.err
    doc = json.loads(tagged.out)
    assert doc["base"]["ref"] == "v1" and doc["head"]["ref"] == "feature/ü-#1"
    assert doc["base"]["commit"] == git(repo, "rev-parse", "v1^{commit}")
    assert doc["resources"] == [], "the README commit changes no policy"


def test_history_shorter_than_the_ref(repo: Path) -> None:
    result = plan(repo, "--base", "HEAD~999")
    bad_input(result, "HEAD~999: no such commit (the history may be shorter", "git rev-parse")


def test_ambiguous_ref_is_refused_not_guessed(repo: Path) -> None:
    result = plan(repo, "--base", "clash")
    bad_input(result, "clash: ambiguous", "refs/heads/clash or refs/tags/clash")
    spelled = plan(repo, "--base", "refs/heads/clash", "--head", "refs/tags/clash")
    assert spelled.code == 0, spelled.err


@pytest.mark.parametrize(
    ("ref", "shown"),
    [
        ("", "--base/--head: empty revision"),
        ("--upload-pack=touch pwned", "--upload-pack=touch pwned: no such branch"),
        ("a\nb", "a\\nb: no such branch"),
        ("main..other", "main..other: no such branch"),
    ],
)
def test_odd_refs_are_named_on_one_line(repo: Path, ref: str, shown: str) -> None:
    result = plan(repo, "--base", ref)
    bad_input(result, shown)
    assert not (repo / "pwned").exists()


def test_detached_head_plans_against_head(tmp_path: Path) -> None:
    root, commit_a = bookinfo_repo(tmp_path / "repo")
    (root / "policies" / "reviews.yaml").write_text(
        (root / "policies" / "reviews.yaml").read_text().replace("v1: 90, v3: 10", "v1: 50, v3: 50")
    )
    commit_all(root, "B")
    git(root, "checkout", "-q", "--detach", commit_a)
    result = plan(root, "--base", "HEAD", "--head", "main", "--detailed-exitcode")
    assert result.code == 1, result.err
    assert "reviews" in result.out and "Traceback" not in result.err


# --- the policy root ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("policies/mesh.yaml", "'policies/mesh.yaml' at main is a file, not a directory"),
        ("..", "--path ..: must be a relative path inside the repository"),
        ("/etc", "--path /etc: must be a relative path inside the repository"),
        ("", "--path: empty"),
        ("policies/../../x", "must be a relative path inside the repository"),
    ],
)
def test_bad_path_values(repo: Path, path: str, needle: str) -> None:
    result = meshc_plan("--base", "main", "--head", "main", "--repo", str(repo), "--path", path)
    bad_input(result, needle)


def test_path_with_trailing_slash_or_dot_prefix_is_the_same_root(repo: Path) -> None:
    plain = meshc_plan(
        "--base", "v1", "--repo", str(repo), "--path", "policies", "--format", "json"
    )
    for spelled in ("policies/", "./policies", "policies//"):
        other = meshc_plan(
            "--base", "v1", "--repo", str(repo), "--path", spelled, "--format", "json"
        )
        assert other.code == plain.code == 0, other.err
        assert other.out == plain.out


def test_path_in_head_only_is_new_and_in_base_only_is_an_error(tmp_path: Path) -> None:
    root, commit_a = bookinfo_repo(tmp_path / "repo")
    git(root, "mv", "policies", "rules")
    commit_all(root, "B: renamed the root")
    head_only = meshc_plan(
        "--base", commit_a, "--head", "main", "--repo", str(root), "--path", "rules"
    )
    assert head_only.code == 0, head_only.err
    assert f"base ({commit_a}) has no rules directory: everything head holds is new" in (
        head_only.out
    )
    base_only = meshc_plan(
        "--base", commit_a, "--head", "main", "--repo", str(root), "--path", "policies"
    )
    bad_input(base_only, "--path policies: main has no directory 'policies'", "check --path")
    worktree = meshc_plan("--base", commit_a, "--repo", str(root), "--path", "policies")
    bad_input(worktree, "no such directory in the worktree", "check --path")


def test_policy_root_that_is_a_submodule_or_a_symlink(tmp_path: Path) -> None:
    inner, _ = bookinfo_repo(tmp_path / "inner")
    root = init_repo(tmp_path / "outer")
    (root / "README.md").write_text("outer\n")
    subprocess.run(
        ["git", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "sub"],
        cwd=root,
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "HOME": "/x"},
    )
    (root / "link").symlink_to("sub/policies")
    commit_all(root, "submodule and link")
    sub = meshc_plan("--base", "main", "--head", "main", "--repo", str(root), "--path", "sub")
    bad_input(sub, "--path sub: 'sub' at main is a submodule", "run it inside the submodule")
    link = meshc_plan("--base", "main", "--head", "main", "--repo", str(root), "--path", "link")
    bad_input(link, "'link' at main is a symbolic link", "pass the directory it points to")
    # the worktree side refuses the same roots (base resolved from a commit without them)
    first = git(root, "rev-list", "--max-parents=0", "HEAD")
    wt_link = meshc_plan("--base", first, "--repo", str(root), "--path", "link")
    assert wt_link.code == 2 and "symbolic link" in wt_link.err, wt_link.err
    # run inside the submodule (its .git is a file): it plans its own history
    inside = meshc_plan("--base", "main", "--repo", str(root / "sub" / "policies"))
    assert inside.code == 0, inside.err


# --- odd trees and files ------------------------------------------------------------------


def test_odd_file_names_are_escaped_never_crash_the_report(tmp_path: Path) -> None:
    """Names with a newline, bytes that are not UTF-8, and 250 characters: each is read and
    reported with an escaped name, in a real process writing real UTF-8 stdout."""
    root, _ = bookinfo_repo(tmp_path / "repo")
    policies = root / "policies"
    broken = b"apiVersion: meshc/v1\nkind: Service\nmetadata: {name: x, namespace: bookinfo}\n"
    broken += b"spec: {calls: [nowhere]}\n"
    odd = [b"new\nline.yaml", b"bad\xff\xfe.yaml", b"n" * 245 + b".yaml"]
    for name in odd:
        with open(os.path.join(os.fsencode(policies), name), "wb") as handle:
            handle.write(broken.replace(b"name: x", b"name: x" + str(len(name)).encode()))
    # the worktree side in JSON (non-UTF-8 names once crashed the write), then the commit
    for args, fmt in (((), "json"), (("--head", "main"), "markdown")):
        if args:
            commit_all(root, "odd names")
        base = "main~1" if args else "main"
        result = run_cli(
            "meshc", "plan", "--now", NOW, "--base", base, "--repo", str(root),
            "--path", "policies", "--format", fmt, *args,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert "head does not compile" in result.stderr
        shown = result.stdout.replace("\\\\", "\\")  # JSON doubles the backslash
        assert "bad\\xff\\xfe.yaml" in shown and "new\\nline.yaml" in shown, fmt
        assert "new\nline" not in result.stdout
        assert "n" * 245 + ".yaml" in result.stdout


def test_yaml_bomb_deep_nesting_nul_and_ten_megabytes_are_findings(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    policies = root / "policies"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
    )
    (policies / "bomb.yaml").write_text(bomb)
    (policies / "deep.yaml").write_text("a: " + "[" * 3000 + "]" * 3000 + "\n")
    (policies / "nul.yaml").write_bytes(b"kind: Service\x00\n")
    (policies / "ten.yaml").write_bytes(b"# " + b"x" * (10 * 1024 * 1024) + b"\n")
    (policies / "escape.yaml").symlink_to("../../../etc/passwd")
    commit_all(root, "hostile files")
    result = plan(root, "--base", "main~1", "--head", "main", "--format", "json")
    assert result.code == 2, result.err
    assert "head does not compile" in result.err
    found = {f["file"]: f["message"] for f in json.loads(result.out)["head"]["findings"]}
    assert "aliases expand to more than" in found["bomb.yaml"]
    assert "nesting deeper than" in found["deep.yaml"]
    assert "NUL bytes" in found["nul.yaml"]
    assert "larger than the 4194304-byte limit" in found["ten.yaml"]
    assert "symbolic link in the Git tree" in found["escape.yaml"]
    assert "root:" not in result.out, "the link's target must never be read"


@pytest.mark.parametrize("side", ["base", "head"])
def test_malformed_meshc_yaml(tmp_path: Path, side: str) -> None:
    root, commit_a = bookinfo_repo(tmp_path / "repo")
    (root / "policies" / "meshc.yaml").write_text("exclude: [unclosed\n")
    broken = commit_all(root, "bad config")
    if side == "base":
        (root / "policies" / "meshc.yaml").unlink()
        commit_all(root, "config removed")
    base, head = (broken, "main") if side == "base" else (commit_a, broken)
    result = plan(root, "--base", base, "--head", head)
    assert result.code == 2, result.err
    assert f"{side} (" in result.out and "does not compile" in result.out
    assert "meshc.yaml:1:10: error[MC101]" in result.out
    expected = "base (" if side == "base" else "head does not compile"
    assert expected in result.err and "Traceback" not in result.err


def test_worktree_with_deletions_renames_untracked_and_an_unreadable_file(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    policies = root / "policies"
    (policies / "ratings.yaml").unlink()  # deleted, still in the index
    git(root, "mv", "policies/details.yaml", "policies/details-renamed.yaml")
    (policies / "productpage.yaml").rename(policies / "pp.yaml")  # renamed, not staged
    status_before = git(root, "status", "--porcelain")
    result = plan(root, "--base", "main", "--format", "json")
    # reviews calls ratings, which the worktree deleted: head fails with a located finding
    assert result.code == 2, result.err
    doc = json.loads(result.out)
    assert doc["head"]["ref"] == "worktree" and doc["head"]["compiles"] is False
    assert any(
        f["file"] == "reviews.yaml" and "ratings" in f["message"] for f in doc["head"]["findings"]
    )
    assert git(root, "status", "--porcelain") == status_before
    if os.geteuid() == 0:
        print("skipped the chmod 000 part: running as root, permission checks do not apply")
        return
    (policies / "pp.yaml").chmod(0)
    try:
        unreadable = plan(root, "--base", "main", "--format", "json")
    finally:
        (policies / "pp.yaml").chmod(0o644)
    assert unreadable.code == 2
    found = {f["file"]: f["message"] for f in json.loads(unreadable.out)["head"]["findings"]}
    assert "cannot read file: Permission denied" in found["pp.yaml"]


def test_linked_worktree_whose_git_is_a_file(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    git(root, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side")
    assert (tmp_path / "wt" / ".git").is_file()
    widen_reviews(tmp_path / "wt")
    result = meshc_plan(
        "--base", "main", "--repo", str(tmp_path / "wt" / "policies"), "--detailed-exitcode"
    )
    assert result.code == 1, result.err
    assert "ratings → reviews GET /reviews/*" in result.out


def test_shallow_clone_lacking_an_older_head(tmp_path: Path) -> None:
    root, commit_a = bookinfo_repo(tmp_path / "origin")
    (root / "README.md").write_text("B\n")
    commit_all(root, "B")
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{root}", str(clone)],
        check=True,
        capture_output=True,
    )
    result = meshc_plan(
        "--base", "HEAD", "--head", "HEAD~1", "--repo", str(clone), "--path", "policies"
    )
    bad_input(result, "HEAD~1: no such commit in this repository; it is a shallow clone")
    by_id = meshc_plan("--base", commit_a, "--repo", str(clone), "--path", "policies")
    bad_input(by_id, "fetch-depth: 0")


# --- flags and state files ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[]", "expected a JSON object with 'version' and 'roots'"),
        ('{"version": 1, "roots": "all"}', "'roots' must be a list"),
        ('{"version": 7, "roots": []}', "version 7 is not supported"),
        ('{"version": 1, "roots": [{"fingerprint": 5}]}', "roots[0].fingerprint: expected"),
        ("", "not JSON"),
        ("roots: []\n", "not JSON"),
    ],
)
def test_ca_status_of_the_wrong_shape_is_a_bad_input(
    repo: Path, tmp_path: Path, content: str, needle: str
) -> None:
    status = tmp_path / "ca.json"
    status.write_text(content)
    result = plan(repo, "--base", "main", "--head", "main", "--ca-status", str(status))
    bad_input(result, f"--ca-status {status}", needle, "meshd ca status --format json")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "cannot read it (No such file or directory)"),
        ("[1, 2]", "expected a mapping of '<namespace>/<rollout>: <step index>'"),
        ("{bookinfo/reviews: [", "YAML syntax error"),
        ('{"bookinfo/reviews": true}', "is not a step index"),
        ("x" * (1024 * 1024 + 1), "larger than 1048576 bytes"),
    ],
)
def test_rollout_state_files(repo: Path, tmp_path: Path, content: str | None, needle: str) -> None:
    state = tmp_path / "state.yaml"
    if content is not None:
        state.write_text(content)
    for flag in ("--rollout-state", "--ca-status") if content is None else ("--rollout-state",):
        result = plan(repo, "--base", "main", "--head", "main", flag, str(state))
        bad_input(result, f"{flag} {state}", needle)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--now", "yesterday"), "'yesterday' is not a time; use RFC 3339"),
        (("--now", "2026-13-01"), "is not a time"),
        (("--format", "yaml"), "'yaml' is not one of 'text', 'json', 'markdown'"),
    ],
)
def test_bad_flags(repo: Path, args: tuple[str, ...], needle: str) -> None:
    result = meshc_plan("--base", "main", "--repo", str(repo), "--path", "policies", *args)
    assert result.code == 2 and result.out == ""
    assert needle in result.err


def test_bad_flag_through_a_real_process(repo: Path) -> None:
    result = run_cli("meshc", "plan", "--base", "main", "--repo", str(repo), "--format", "yaml")
    assert result.returncode == 2 and result.stdout == ""
    assert "'yaml' is not one of 'text', 'json', 'markdown'" in result.stderr
    assert "Traceback" not in result.stderr


# --- secrets --------------------------------------------------------------------------------


def test_secrets_are_masked_in_every_format(tmp_path: Path) -> None:
    """A private key pasted into the Mesh CA (base and head) and a token-like label whose
    value changes: no format shows any of it, and the change is still visible as such."""
    root, _ = bookinfo_repo(tmp_path / "repo")
    policies = root / "policies"
    reviews = policies / "reviews.yaml"
    labelled = reviews.read_text().replace(
        "v1: {labels: {version: v1}}", "v1: {labels: {version: v1, api-token: alphaSECRET1}}", 1
    )
    assert "alphaSECRET1" in labelled
    reviews.write_text(labelled)
    commit_all(root, "token label")
    reviews.write_text(labelled.replace("alphaSECRET1", "betaSECRET2"))
    for fmt in ("text", "json", "markdown"):
        result = meshc_plan("--base", "main", "--repo", str(policies), "--format", fmt)
        assert result.code == 0, result.err
        assert "SECRET" not in result.out + result.err, fmt
        assert "(masked; changed)" in result.out, fmt

    key = "\n".join(f"        {line}" for line in SECRET_PEM.splitlines())
    ca = f"  ca:\n    issuer: root\n    anchors:\n    - name: root\n      pem: |\n{key}\n"
    mesh = policies / "mesh.yaml"
    mesh.write_text(mesh.read_text() + ca)
    commit_all(root, "pasted a key")
    mesh.write_text(mesh.read_text().replace("AAoIBAQC7", "AAoIBAQC8"))
    for fmt in ("text", "json", "markdown"):
        result = meshc_plan("--base", "main", "--repo", str(policies), "--format", fmt)
        assert result.code == 2, result.err
        assert "MIIEvQIBADAN" not in result.out + result.err, fmt
        assert "pem contains a private key (content not shown)" in result.out, fmt
    missing = meshc_plan("--base", SECRET_PEM, "--repo", str(root))
    assert missing.code == 2 and "MIIEvQIBADAN" not in missing.err
    assert "PRIVATE KEY (masked)" in missing.err
