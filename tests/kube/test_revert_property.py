"""The rollback property on the Kubernetes target: after applying A, then B, then
`git revert B`, the cluster holds exactly A's objects, object for object, at the same
rollout steps — on the generated histories of tests/run/test_revert_property.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.engine.edits import SchemaEditor, read_tree
from tests.kube.conftest import Kube
from tests.kube.support import KubeLoop
from tests.plan.gitrepo import commit_all, git
from tests.run.test_revert_property import _base_repo, _meaningful_edit, _write

HISTORIES = 4


@pytest.mark.parametrize("seed", range(HISTORIES))
def test_revert_restores_the_clusters_objects(tmp_path: Path, kube: Kube, seed: int) -> None:
    rng = random.Random(seed)
    editor = SchemaEditor()
    repo = _base_repo(tmp_path / "repo")
    loop = KubeLoop(repo, tmp_path / "state", kube)
    tree = read_tree(repo / "policies")
    for step in range(rng.randrange(0, 3)):
        _meaningful_edit(tree, rng) if rng.random() < 0.7 else editor.edit(tree, rng)
        _write(repo, tree)
        commit_all(repo, f"A{step + 1}")
        loop.run()
    after_a = loop.run()
    assert after_a.reason in ("Applied", "Unchanged", "CompileFailed"), after_a
    objects_a, steps_a = kube.owned(), dict(loop.loop.rollout_state)
    edits = [
        _meaningful_edit(tree, rng) if rng.random() < 0.7 else editor.edit(tree, rng)
        for _ in range(rng.randrange(1, 4))
    ]
    _write(repo, tree)
    b = commit_all(repo, "B")
    after_b = loop.run()
    git(repo, "revert", "--no-edit", b)
    reverted = loop.run()
    assert reverted.reason in ("Applied", "Unchanged", "CompileFailed"), reverted
    assert kube.owned() == objects_a, f"objects differ after reverting {edits} ({after_b.reason})"
    assert dict(loop.loop.rollout_state) == steps_a
    if after_a.reason != "CompileFailed":
        assert objects_a, "A applied objects"
