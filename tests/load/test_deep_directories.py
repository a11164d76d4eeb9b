"""Directories nested deeper than MAX_DEPTH are reported (MC107) and not read — the same way
on disk, in a Git commit and in a worktree — instead of exhausting Python's stack."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from compiler.api import compile_tree, load_tree
from compiler.load.discover import MAX_DEPTH
from tests.helpers import NOW, REPO
from tests.plan.gitrepo import commit_all, init_repo
from tests.plan.runner import meshc_plan

EXTRA = (
    "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: deep, namespace: bookinfo}\n"
    "spec:\n  ports: [{name: http, port: 9080, protocol: http}]\n"
    "  versions: {v1: {labels: {version: v1}}}\n"
)


def _nested(root: Path, levels: int) -> str:
    """`policies/` with a Service file `levels` directories down; its relative path."""
    shutil.copytree(REPO / "policies", root)
    relative = "/".join(["d"] * levels + ["deep.yaml"])
    directory = root
    for _ in range(levels):  # one level at a time: pathlib's mkdir(parents=True) recurses
        directory = directory / "d"
        directory.mkdir()
    (directory / "deep.yaml").write_text(EXTRA)
    return relative


def _remove_nested(root: Path, levels: int) -> None:
    """Remove the nested directories bottom-up, one level at a time: shutil.rmtree (and so
    pytest's clean-up of old temporary directories) recurses once per level."""
    deepest = root.joinpath(*["d"] * levels)
    (deepest / "deep.yaml").unlink(missing_ok=True)
    for level in range(levels, 0, -1):
        root.joinpath(*["d"] * level).rmdir()


def _deep_findings(files: list[dict[str, str]]) -> list[str]:
    return [f["file"] for f in files if f["code"] == "MC107"]


def test_a_file_at_the_deepest_level_read_is_compiled(tmp_path: Path) -> None:
    _nested(tmp_path / "policies", MAX_DEPTH)
    compilation = compile_tree(load_tree(tmp_path / "policies"), now=NOW)
    assert not [d for d in compilation.diagnostics if d.code == "MC107"]
    assert any(key.name == "deep" for key in compilation.model.services)


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1100])
def test_deeper_directories_are_reported_on_disk_in_git_and_in_the_worktree(
    tmp_path: Path, levels: int
) -> None:
    repo = init_repo(tmp_path / "repo")
    _nested(repo / "policies", levels)
    try:
        _check_every_reader(repo)
    finally:
        _remove_nested(repo / "policies", levels)


def _check_every_reader(repo: Path) -> None:
    expected = "/".join(["d"] * (MAX_DEPTH + 1))

    disk = compile_tree(load_tree(repo / "policies"), now=NOW)
    found = [d for d in disk.diagnostics if d.code == "MC107"]
    assert [d.span.file for d in found] == [expected]
    assert f"deeper than {MAX_DEPTH} levels" in found[0].message
    assert not any(key.name == "deep" for key in disk.model.services)

    commit = commit_all(repo, "deep")
    for head in (commit, None):  # a commit's tree, then the worktree
        flags = ["--head", head] if head else []
        result = meshc_plan(
            "--repo", str(repo), "--path", "policies", "--base", commit, *flags, "--format", "json"
        )
        assert result.code == 2, result.err  # the root does not compile: MC107 is an error
        document = json.loads(result.out)
        assert _deep_findings(document["head"]["findings"]) == [expected]
