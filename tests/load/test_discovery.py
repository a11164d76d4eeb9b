"""Discovery: what under the policy root is read (YAML files), skipped (dot directories,
other files, `meshc.yaml` excludes, foreign documents with a note) or reported as a finding
(links out of the root or broken, special and unreadable files and directories)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from compiler.api import compile_tree, load_tree
from compiler.diagnostics import Diagnostic
from compiler.load.discover import discover_tree
from tests.helpers import MESH, NOW, run_cli, write_tree

BROKEN = "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: x}\nspec: {prots: []}\n"
WORKFLOW = "name: CI\non: [push]\njobs: {}\n"


def problems_of(root: Path) -> list[Diagnostic]:
    compilation = compile_tree(load_tree(root), now=NOW)
    return [d for d in compilation.diagnostics if d.suppressed_reason is None]


def test_dot_directories_and_non_yaml_files_are_not_read(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "mesh.yaml": MESH,
            ".github/workflows/ci.yaml": BROKEN,
            "team/.hidden/x.yaml": BROKEN,
            ".dotfile.yaml": BROKEN,
            "README.md": BROKEN,
            "notes.txt": "\x00",
        },
    )
    tree = load_tree(tmp_path)
    assert sorted(tree.files) == ["mesh.yaml"]
    assert problems_of(tmp_path) == []


def test_meshc_yaml_excludes_are_not_read(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "mesh.yaml": MESH,
            "meshc.yaml": 'exclude: [vendor/, "*.generated.yaml", "charts/*/values.yaml"]\n',
            "vendor/x.yaml": BROKEN,
            "a.generated.yaml": BROKEN,
            "charts/app/values.yaml": BROKEN,
            "charts/app/other.yml": BROKEN,
        },
    )
    assert sorted(load_tree(tmp_path).files) == ["charts/app/other.yml", "mesh.yaml"]
    found = [(d.span.file, d.code) for d in problems_of(tmp_path)]
    assert ("charts/app/other.yml", "MC105") in found
    assert all(file == "charts/app/other.yml" for file, _ in found)


def test_foreign_documents_are_skipped_with_a_note_naming_the_file(tmp_path: Path) -> None:
    deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
    files = {"mesh.yaml": MESH, "ci/workflow.yaml": WORKFLOW, "k8s/web.yml": deployment}
    write_tree(tmp_path, files)
    compilation = compile_tree(load_tree(tmp_path), now=NOW)
    assert compilation.diagnostics == []
    assert compilation.notes == [
        "ci/workflow.yaml: skipped a YAML mapping without apiVersion/kind (not a meshc document)",
        "k8s/web.yml: skipped Deployment (apps/v1) (not a meshc document)",
    ]
    result = run_cli("meshc", "lint", str(tmp_path), "--now", "2026-11-25T12:00:00Z")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note: ci/workflow.yaml: skipped" in result.stderr
    assert "note: k8s/web.yml: skipped Deployment (apps/v1)" in result.stderr


def _one(problems: list[Diagnostic], file: str) -> Diagnostic:
    found = [d for d in problems if d.span.file == file]
    assert len(found) == 1, problems
    return found[0]


def test_symlinks_out_of_the_root_are_findings(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_tree(outside, {"secret.yaml": BROKEN, "dir/x.yaml": BROKEN})
    root = write_tree(tmp_path / "root", {"mesh.yaml": MESH})
    (root / "link.yaml").symlink_to(outside / "secret.yaml")
    (root / "linked-dir").symlink_to(outside / "dir")
    problems = problems_of(root)
    for file in ("link.yaml", "linked-dir"):
        finding = _one(problems, file)
        assert finding.code == "MC109"
        assert (finding.span.line, finding.span.col) == (1, 1)
        assert finding.message == "symbolic link points outside the policy root"
    assert "secret.yaml" not in str(load_tree(root).files)


def test_symlink_inside_the_root_is_read(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"mesh.yaml": MESH, "real/a.yml": BROKEN})
    (root / "alias.yaml").symlink_to(root / "real" / "a.yml")
    assert sorted(load_tree(root).files) == ["alias.yaml", "mesh.yaml", "real/a.yml"]


def test_broken_links_loops_and_special_files_are_findings(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"mesh.yaml": MESH})
    (root / "broken.yaml").symlink_to(root / "gone.yaml")
    (root / "loop.yaml").symlink_to(root / "loop.yaml")
    os.mkfifo(root / "pipe.yaml")
    problems = problems_of(root)
    expected = {
        "broken.yaml": "broken symbolic link: its target does not exist",
        "loop.yaml": "symbolic link loop",
        "pipe.yaml": "not a regular file",
    }
    for file, message in expected.items():
        finding = _one(problems, file)
        assert (finding.code, finding.message) == ("MC107", message)
        assert finding.hint


def test_unreadable_file_is_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, which reads any mode; make open() fail the way EACCES does.
    root = write_tree(tmp_path, {"mesh.yaml": MESH, "locked.yaml": MESH})
    real_open = Path.open

    def guarded(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "locked.yaml":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    tree = discover_tree(root)
    assert sorted(tree.files) == ["mesh.yaml"]
    [problem] = tree.problems
    assert (problem.code, str(problem.span)) == ("MC107", "locked.yaml:1:1")
    assert problem.message == "cannot read file: Permission denied"


def test_a_single_file_root(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"only.yaml": MESH, "other.yaml": BROKEN})
    tree = discover_tree(root / "only.yaml")
    assert sorted(tree.files) == ["only.yaml"]


def test_unreadable_directory_is_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_tree(tmp_path, {"mesh.yaml": MESH, "team/locked/a.yaml": BROKEN})
    real_scandir = os.scandir

    def guarded(path: Any = ".") -> Any:
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", guarded)
    tree = discover_tree(root)
    assert sorted(tree.files) == ["mesh.yaml"]
    [problem] = tree.problems
    assert (problem.code, str(problem.span)) == ("MC107", "team/locked:1:1")
    assert problem.message == "cannot read directory: Permission denied"
