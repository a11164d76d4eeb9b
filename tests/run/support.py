"""A policy repository and `meshd run` against it, in-process or as a real process."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import main
from tests.helpers import BIN, REPO
from tests.plan.gitrepo import GIT_ENV, commit_all, git, init_repo

EXTRA_SERVICE = (
    "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: extra, namespace: bookinfo}\n"
    "spec:\n  ports: [{name: http, port: 80, protocol: http}]\n"
)


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def policy_repo(root: Path) -> Path:
    init_repo(root)
    shutil.copytree(REPO / "policies", root / "policies")
    commit_all(root, "A: bookinfo")
    return root


def commit_file(repo: Path, name: str, text: str | None, message: str) -> str:
    path = repo / "policies" / name
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    return commit_all(repo, message)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def meshd_once(repo: Path, tmp: Path, *extra: str) -> Ran:
    """`meshd run --once` on the directory target, in-process."""
    args = [
        "run",
        "--repo",
        str(repo),
        "--path",
        "policies",
        "--target",
        "directory",
        "--out",
        str(tmp / "out"),
        "--state",
        str(tmp / "state"),
        "--once",
        *extra,
    ]
    result = CliRunner().invoke(main, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"meshd run raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return Ran(result.exit_code, result.stdout, result.stderr)


def meshd_process(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "meshd"), *args],
        env={**os.environ, **GIT_ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def files(top: Path) -> dict[str, bytes]:
    if not top.exists():
        return {}
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}
