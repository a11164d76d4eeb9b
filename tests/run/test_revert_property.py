"""The rollback property on generated histories: after applying A, then B, then
`git revert B`, each target holds exactly what it held after A — byte for byte in the
directory target, snapshot for snapshot in the xds target — at the same rollout steps.

Histories come from schema-driven random edits (tests/engine/edits.py), so B is as often
a revision the loop refuses as one it applies; either way the revert must land on A.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compiler.lower.envoy.snapshot import RESOURCE_TYPES
from reconciler.loop import Reconciler
from reconciler.source.git import GitRepositorySource
from reconciler.state import StateStore
from reconciler.targets.directory import DirectoryTarget
from reconciler.targets.xds import XdsTarget
from reconciler.up.credentials import temporary_ca
from reconciler.xds.server import XdsServer
from tests.engine.edits import SchemaEditor, read_tree
from tests.helpers import REPO
from tests.plan.gitrepo import commit_all, git, init_repo
from tests.run.support import files

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
HISTORIES = 8


def _with_endpoints(text: str) -> str:
    """bookinfo with one instance per version, so the xds target has nodes to serve."""
    port = re.search(r"port: (\d+)", text)
    if port is None:
        return text
    return re.sub(
        r"(v\d): \{labels: \{version: (v\d)\}\}",
        lambda m: (
            f'{m[1]}: {{labels: {{version: {m[2]}}}, endpoints: ["10.0.0.{m[1][1:]}:{port[1]}"]}}'
        ),
        text,
    )


def _base_repo(root: Path) -> Path:
    init_repo(root)
    shutil.copytree(REPO / "policies", root / "policies")
    for path in (root / "policies").glob("*.yaml"):
        path.write_text(_with_endpoints(path.read_text()))
    commit_all(root, "A0: bookinfo with endpoints")
    return root


def _meaningful_edit(tree: dict[str, bytes], rng: random.Random) -> str:
    """An edit that compiles and changes what the targets hold (a schema edit is often
    refused, which proves less): a new service with its own policy, a moved split, a
    new timeout."""
    choice = rng.randrange(3)
    if choice == 0:
        number = rng.randrange(1, 250)
        port = rng.choice((8080, 9090, 7000))
        methods = rng.sample(["GET", "POST", "PUT", "DELETE"], rng.randrange(1, 4))
        tree[f"svc-{number}.yaml"] = (
            "apiVersion: meshc/v1\nkind: Service\n"
            f"metadata: {{name: svc-{number}, namespace: bookinfo}}\n"
            f"spec:\n  ports: [{{name: http, port: {port}, protocol: http}}]\n"
            "  versions: {v1: {labels: {version: v1}, "
            f'endpoints: ["10.1.0.{number}:{port}"]}}}}\n'
            "---\napiVersion: meshc/v1\nkind: AccessPolicy\n"
            f"metadata: {{name: svc-{number}, namespace: bookinfo}}\n"
            f"spec:\n  service: svc-{number}\n  rules:\n"
            f"  - from: [{{service: productpage}}]\n    to: {{methods: [{', '.join(methods)}]}}\n"
        ).encode()
        return f"add svc-{number}"
    if choice == 1:
        canary = rng.randrange(0, 101)
        text = re.sub(
            rb"split: \{v1: \d+, v3: \d+\}",
            f"split: {{v1: {100 - canary}, v3: {canary}}}".encode(),
            tree["reviews.yaml"],
        )
        tree["reviews.yaml"] = text
        return f"reviews split {100 - canary}/{canary}"
    seconds = rng.randrange(1, 30)
    tree["reviews.yaml"] = re.sub(
        rb"timeout: \d+s", f"timeout: {seconds}s".encode(), tree["reviews.yaml"]
    )
    return f"reviews timeout {seconds}s"


def _write(repo: Path, tree: dict[str, bytes]) -> None:
    policies = repo / "policies"
    for old in policies.rglob("*.yaml"):
        if str(old.relative_to(policies)) not in tree:
            old.unlink()
    for name, raw in tree.items():
        (policies / name).write_bytes(raw)


class Loops:
    """One repository followed by two loops: a directory target and an xds target."""

    def __init__(self, repo: Path, work: Path) -> None:
        self.server = XdsServer(temporary_ca(work / "ca", "cluster.local", NOW))
        self.out = work / "out"
        self.loops = [
            self._loop(repo, work / "dir", DirectoryTarget(self.out)),
            self._loop(repo, work / "xds", XdsTarget(self.server, address="test")),
        ]

    def _loop(self, repo: Path, state: Path, target: DirectoryTarget | XdsTarget) -> Reconciler:
        source = GitRepositorySource(str(repo), mirror_dir=state / "mirror.git", path="policies")
        return Reconciler(
            source, target, store=StateStore(state), clock=lambda: NOW, confirm_timeout=0.1
        )

    def apply(self) -> tuple[dict[str, bytes], dict[str, dict[str, dict[str, bytes]]], list[str]]:
        reasons = [asyncio.run(loop.reconcile()).reason for loop in self.loops]
        snapshots = {
            node: {
                kind: {
                    name: message.SerializeToString(deterministic=True)
                    for name, message in sorted(snapshot.resources.get(kind, {}).items())
                }
                for kind in RESOURCE_TYPES
            }
            for node, snapshot in sorted(self.server._snapshots.items())
        }
        return files(self.out), snapshots, reasons


@pytest.mark.parametrize("seed", range(HISTORIES))
def test_revert_restores_each_targets_state(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    editor = SchemaEditor()
    repo = _base_repo(tmp_path / "repo")
    loops = Loops(repo, tmp_path)
    tree = read_tree(repo / "policies")
    for step in range(rng.randrange(0, 3)):  # A: a few applied-or-refused commits
        _meaningful_edit(tree, rng) if rng.random() < 0.7 else editor.edit(tree, rng)
        _write(repo, tree)
        commit_all(repo, f"A{step + 1}")
        loops.apply()
    after_a = loops.apply()
    assert after_a[2] in (["Applied"] * 2, ["Unchanged"] * 2, ["CompileFailed"] * 2)
    edits = [
        _meaningful_edit(tree, rng) if rng.random() < 0.7 else editor.edit(tree, rng)
        for _ in range(rng.randrange(1, 4))
    ]
    _write(repo, tree)
    b = commit_all(repo, "B")
    after_b = loops.apply()
    git(repo, "revert", "--no-edit", b)
    reverted = loops.apply()
    assert reverted[0] == after_a[0], f"directory differs after reverting {edits} ({after_b[2]})"
    assert reverted[1] == after_a[1], f"xds snapshots differ after reverting {edits}"
    if "CompileFailed" not in after_a[2]:
        assert after_a[1], "the xds target serves the endpoints' nodes"
