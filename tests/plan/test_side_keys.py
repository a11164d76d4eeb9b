"""Sides read from Git are keyed by their policy root's tree id; the worktree by content.
Tree reading through the caches gives exactly what a fresh read gives."""

from __future__ import annotations

import os
from pathlib import Path

from compiler.load.discover import PolicyTree
from compiler.plan.engine import Planner, side_digest
from compiler.plan.source import (
    WORKTREE,
    BlobCache,
    CommitTree,
    Revision,
    open_source,
    read_commit_tree,
    read_worktree,
    resolve_revision,
)
from tests.helpers import NOW
from tests.plan.gitrepo import bookinfo_repo, commit_all, edit, git, widen_reviews


def read(root: Path, ref: str, blobs: BlobCache, prefix: str = "policies") -> CommitTree:
    source = open_source(root, prefix)
    try:
        return read_commit_tree(source, resolve_revision(source, ref), blobs)
    finally:
        source.repo.close()  # type: ignore[attr-defined]


def plain(tree: PolicyTree) -> tuple[dict[str, bytes], list[str], bytes | None]:
    return dict(tree.files), [str(p) for p in tree.problems], tree.config


def digest(tree: PolicyTree) -> str:
    return side_digest(tree, now=NOW, rollout_state={})


def test_a_commit_side_is_reused_by_root_tree_id(tmp_path: Path) -> None:
    root, first = bookinfo_repo(tmp_path / "repo")
    (root / "README.md").write_text("outside the policy root\n")
    second = commit_all(root, "docs only")
    widen_reviews(root)
    third = commit_all(root, "widen reviews")
    planner = Planner()
    trees = [read(root, ref, planner.blobs) for ref in (first, second, third)]
    sides = [
        planner.compile_side(resolve_revision_of(root, ref), tree, now=NOW, rollout_state={})
        for ref, tree in zip((first, second, third), trees, strict=True)
    ]
    # same policy root tree: the same compiled side, not compiled again
    assert trees[0].root_id == trees[1].root_id != trees[2].root_id
    assert sides[1].compilation is sides[0].compilation
    assert sides[2].compilation is not sides[0].compilation
    assert len(planner.sides) == 2
    again = planner.compile_side(
        resolve_revision_of(root, third),
        read(root, third, planner.blobs),
        now=NOW,
        rollout_state={},
    )
    assert again.compilation is sides[2].compilation
    # the key still covers now and the rollout state
    other_state = planner.compile_side(
        resolve_revision_of(root, third), trees[2], now=NOW, rollout_state={"reviews": 1}
    )
    assert other_state.compilation is not sides[2].compilation


def resolve_revision_of(root: Path, ref: str) -> Revision:
    source = open_source(root, "policies")
    try:
        return resolve_revision(source, ref)
    finally:
        source.repo.close()  # type: ignore[attr-defined]


def test_config_excludes_change_the_root_id_and_the_files(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    (root / "policies" / "vendor").mkdir()
    (root / "policies" / "vendor" / "junk.yaml").write_text("{{{ not yaml\n")
    with_junk = commit_all(root, "vendor junk")
    (root / "policies" / "meshc.yaml").write_text("exclude: [vendor/]\n")
    excluded = commit_all(root, "exclude vendor")
    blobs = BlobCache()
    junk, clean = read(root, with_junk, blobs), read(root, excluded, blobs)
    assert "vendor/junk.yaml" in junk.files and "vendor/junk.yaml" not in clean.files
    assert clean.config == b"exclude: [vendor/]\n" and junk.config is None
    assert junk.root_id != clean.root_id and digest(junk) != digest(clean)
    assert plain(clean) == plain(read(root, excluded, BlobCache()))


def test_an_edited_commit_tree_is_hashed_by_content(tmp_path: Path) -> None:
    """A caller that edits a tree it read makes the tree id meaningless for it."""
    root, first = bookinfo_repo(tmp_path / "repo")
    blobs = BlobCache()
    tree = read(root, first, blobs)
    untouched = digest(tree)
    assert untouched == digest(read(root, first, blobs))
    tree.files["reviews.yaml"] = tree.files["reviews.yaml"].replace(b"v1: 90", b"v1: 80")
    edited = digest(tree)
    assert edited != untouched
    assert edited == digest(PolicyTree(dict(tree.files), list(tree.problems), tree.config))
    # the cached snapshot is not touched by the caller's edit
    assert b"v1: 90" in read(root, first, blobs).files["reviews.yaml"]


def test_a_worktree_side_with_edited_content_is_compiled_again(tmp_path: Path) -> None:
    root, _ = bookinfo_repo(tmp_path / "repo")
    source = open_source(root, "policies")
    source.repo.close()  # type: ignore[attr-defined]  # the worktree read needs no objects
    worktree = Revision(WORKTREE, None, None)
    planner = Planner()
    side = planner.compile_side(worktree, read_worktree(source), now=NOW, rollout_state={})
    same = planner.compile_side(worktree, read_worktree(source), now=NOW, rollout_state={})
    assert same.compilation is side.compilation  # unchanged content: reused
    edit(root / "policies" / "reviews.yaml", "split: {v1: 90, v3: 10}", "split: {v1: 60, v3: 40}")
    after = read_worktree(source)
    assert not isinstance(after, CommitTree)
    edited = planner.compile_side(worktree, after, now=NOW, rollout_state={})
    assert edited.compilation is not side.compilation
    assert edited.meaning is not None and side.meaning is not None
    assert edited.meaning.traffic != side.meaning.traffic


def test_cached_tree_reads_equal_fresh_reads(tmp_path: Path) -> None:
    """Subtree listings and roots come from the cache on later reads; links, dot
    directories and non-YAML files are treated as a fresh read treats them."""
    root, first = bookinfo_repo(tmp_path / "repo")
    nested = root / "policies" / "team" / "inner"
    nested.mkdir(parents=True)
    (nested / "extra.yaml").write_text("# nothing here\n")
    (root / "policies" / ".hidden").mkdir()
    (root / "policies" / ".hidden" / "x.yaml").write_text("{{{\n")
    (root / "policies" / "notes.txt").write_text("not yaml\n")
    os.symlink("reviews.yaml", root / "policies" / "link.yaml")
    second = commit_all(root, "nested, hidden, link")
    edit(root / "policies" / "team" / "inner" / "extra.yaml", "nothing", "still nothing")
    third = commit_all(root, "edit nested")
    warm = BlobCache()
    for ref in (first, second, third, second, first):
        cached, fresh = read(root, ref, warm), read(root, ref, BlobCache())
        assert plain(cached) == plain(fresh), ref
        assert cached.root_id == fresh.root_id == git(root, "rev-parse", f"{ref}:policies")
    tree = read(root, second, warm)
    assert "team/inner/extra.yaml" in tree.files and "notes.txt" not in tree.files
    assert not any(path.startswith(".hidden") for path in tree.files)
    assert [p.code for p in tree.problems] == ["MC109"] and "link.yaml" not in tree.files
    # the top level as the policy root: the whole repository's tree id
    top = read(root, third, warm, prefix="")
    assert top.root_id == git(root, "rev-parse", f"{third}^{{tree}}")
    assert "policies/team/inner/extra.yaml" in top.files
