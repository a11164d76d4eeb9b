"""Small helpers shared by the tests: compile in-memory trees and run the real CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from compiler.api import Compilation, compile_tree
from compiler.diagnostics import Diagnostic
from compiler.load.discover import PolicyTree

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

MESH = """\
apiVersion: meshc/v1
kind: Mesh
metadata: {name: test-mesh}
spec: {}
"""


def tree(files: dict[str, str], *, with_mesh: bool = True) -> PolicyTree:
    contents = {name: textwrap.dedent(text).encode() for name, text in files.items()}
    if with_mesh and not any("kind: Mesh" in t for t in files.values()):
        contents.setdefault("mesh.yaml", MESH.encode())
    return PolicyTree(files=contents)


def compile_files(
    files: dict[str, str], *, with_mesh: bool = True, now: datetime = NOW
) -> Compilation:
    return compile_tree(tree(files, with_mesh=with_mesh), now=now)


def codes(compilation: Compilation) -> list[str]:
    return [d.code for d in compilation.diagnostics if d.suppressed_reason is None]


def findings(compilation: Compilation, code: str) -> list[Diagnostic]:
    return [d for d in compilation.diagnostics if d.code == code and d.suppressed_reason is None]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `meshc ...` or `meshd ...` as a real subprocess from this venv."""
    program, *rest = args
    # No on-disk lint cache by default: tests must not leave .meshc_cache in fixture trees
    # (tests/test_cache.py covers the cache; pass env={"MESHC_NO_CACHE": ""} to use it).
    quiet = {"NO_COLOR": "1", "COLUMNS": "200", "MESHC_NO_CACHE": "1"}
    full_env = {**os.environ, **quiet, **(env or {})}
    return subprocess.run(
        [str(BIN / program), *rest],
        cwd=cwd,
        env=full_env,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
