"""The directory target writes what `meshc render --out` writes, and tells drift apart."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from compiler.api import compile_tree, load_tree
from compiler.artifacts import Artifacts
from compiler.cli import cli
from compiler.lower import lower
from reconciler.targets.directory import DirectoryTarget
from tests.helpers import REPO

NOW = "2026-11-25T12:00:00Z"


def _artifacts(root: Path) -> Artifacts:
    from datetime import datetime

    when = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
    return lower(compile_tree(load_tree(root), now=when))


def _files(top: Path) -> dict[str, bytes]:
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


def test_same_files_and_bytes_as_render_out(tmp_path: Path) -> None:
    rendered = tmp_path / "rendered"
    result = CliRunner().invoke(
        cli, ["render", str(REPO / "policies"), "--now", NOW, "--out", str(rendered)]
    )
    assert result.exit_code == 0, result.output
    target = DirectoryTarget(tmp_path / "target")
    outcome = target.apply(_artifacts(REPO / "policies"), previous={}, prune=True)
    assert _files(tmp_path / "target") == _files(rendered)
    assert len(outcome.created) == len(_files(rendered)) and not outcome.updated
    assert set(outcome.inventory) == set(_files(rendered))


def test_reapply_changes_nothing_and_hand_edits_are_drift(tmp_path: Path) -> None:
    artifacts = _artifacts(REPO / "policies")
    target = DirectoryTarget(tmp_path / "out")
    first = target.apply(artifacts, previous={}, prune=True)
    again = target.apply(artifacts, previous=first.inventory, prune=True)
    assert not again.changed and again.unchanged == len(first.inventory)
    edited, deleted = sorted(first.inventory)[:2]
    (tmp_path / "out" / edited).write_text("hand edit\n")
    (tmp_path / "out" / deleted).unlink()
    fixed = target.apply(artifacts, previous=again.inventory, prune=True)
    assert set(fixed.drift_corrected) == {edited, deleted}
    assert not fixed.created and not fixed.updated
    assert _files(tmp_path / "out") == _files_after_first(tmp_path, artifacts)


def _files_after_first(tmp_path: Path, artifacts: Artifacts) -> dict[str, bytes]:
    fresh = DirectoryTarget(tmp_path / "fresh")
    fresh.apply(artifacts, previous={}, prune=True)
    return _files(tmp_path / "fresh")


def test_removed_objects_are_pruned_only_from_the_inventory(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    (policies / "extra.yaml").write_text(
        "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: extra, namespace: bookinfo}\n"
        "spec:\n  ports: [{name: http, port: 80, protocol: http}]\n"
    )
    out = tmp_path / "out"
    target = DirectoryTarget(out)
    first = target.apply(_artifacts(policies), previous={}, prune=True)
    foreign = out / "bookinfo" / "notes.yaml"
    foreign.write_text("kind: ConfigMap\n")
    (policies / "extra.yaml").unlink()
    kept = target.apply(_artifacts(policies), previous=first.inventory, prune=False)
    assert not kept.pruned
    gone = [p for p in first.inventory if ".extra." in p]
    assert gone and all((out / p).exists() for p in gone)
    assert all(p in kept.inventory for p in gone)
    pruned = target.apply(_artifacts(policies), previous=kept.inventory, prune=True)
    assert sorted(pruned.pruned) == sorted(gone)
    assert not any((out / p).exists() for p in gone)
    assert foreign.read_text() == "kind: ConfigMap\n"


def test_a_file_meshc_did_not_write_is_a_conflict(tmp_path: Path) -> None:
    artifacts = _artifacts(REPO / "policies")
    out = tmp_path / "out"
    path = sorted(DirectoryTarget(out).desired(artifacts))[0]
    (out / path).parent.mkdir(parents=True)
    (out / path).write_text("# someone else's object\n")
    outcome = DirectoryTarget(out).apply(artifacts, previous={}, prune=True)
    assert outcome.conflicts == (path,)
    assert (out / path).read_text() == "# someone else's object\n"
    assert path not in outcome.inventory and len(outcome.created) == len(artifacts) - 1


def test_scratch_files_of_a_killed_apply_are_swept(tmp_path: Path) -> None:
    artifacts = _artifacts(REPO / "policies")
    out = tmp_path / "out"
    first = DirectoryTarget(out).apply(artifacts, previous={}, prune=True)
    stale = out / "bookinfo" / ".half.yaml.meshd-tmp"
    stale.write_text("half")
    DirectoryTarget(out).apply(artifacts, previous=first.inventory, prune=True)
    assert not stale.exists()
