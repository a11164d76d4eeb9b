"""Shared helpers for the lowering tests: fixtures, golden files, the reference CRDs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from compiler.api import Compilation, compile_tree, load_tree
from compiler.artifacts import Artifacts, to_yaml_stream
from compiler.lower import lower
from tests.helpers import NOW, REPO, tree

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
RICH = HERE / "fixtures" / "rich"
BOOKINFO = REPO / "policies"
REFERENCE = REPO.parent / "shared" / "reference" / "istio"
REFERENCE_CRDS = REFERENCE / "customresourcedefinitions.gen.yaml"
REGENERATE = "UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/lower"


def compile_dir(root: Path, *, state: Mapping[str, int] | None = None) -> Compilation:
    compilation = compile_tree(load_tree(root), now=NOW, rollout_state=state)
    errors = [f"{d.span}: {d.code} {d.message}" for d in compilation.blocking()]
    assert compilation.ok, f"fixture {root} does not compile: {errors}"
    return compilation


def render_dir(root: Path, *, state: Mapping[str, int] | None = None) -> Artifacts:
    return lower(compile_dir(root, state=state))


def render_files(files: dict[str, str], *, state: Mapping[str, int] | None = None) -> Artifacts:
    """Render `files` (with a Mesh) at the rollout `state`: the state is an input of the
    compile, so setting it on a finished compilation would be silently ignored."""
    compilation = compile_tree(tree(files), now=NOW, rollout_state=dict(state or {}))
    assert compilation.ok, [f"{d.span}: {d.message}" for d in compilation.blocking()]
    return lower(compilation)


def objects(artifacts: Artifacts, kind: str) -> dict[str, dict[str, Any]]:
    """`namespace/name` → object, for one kind."""
    return {f"{k.scope}/{k.name}": obj for k, obj in artifacts if k.kind == kind}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; create it with: {REGENERATE}")
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        import difflib

        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"golden/{name}",
                tofile="rendered",
            )
        )
        pytest.fail(
            f"{name} differs from the golden file; if intended, regenerate with: "
            f"{REGENERATE}\n{diff}"
        )


def stream_of(artifacts: Artifacts, kind: str | None = None) -> str:
    return to_yaml_stream(obj for key, obj in artifacts if kind is None or key.kind == kind)
