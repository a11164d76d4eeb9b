"""Real temporary Git repositories for the plan tests (the `git` binary, no mocks)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.helpers import REPO

GIT_ENV = {
    "GIT_AUTHOR_NAME": "plan-test",
    "GIT_AUTHOR_EMAIL": "plan-test@example.invalid",
    "GIT_COMMITTER_NAME": "plan-test",
    "GIT_COMMITTER_EMAIL": "plan-test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def init_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    return root


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    return git(root, "rev-parse", "HEAD")


def bookinfo_repo(root: Path) -> tuple[Path, str]:
    """A repository whose policies/ is a copy of this project's example; returns commit A."""
    init_repo(root)
    shutil.copytree(REPO / "policies", root / "policies")
    return root, commit_all(root, "A: bookinfo")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name}: {old!r} not found"
    path.write_text(text.replace(old, new, 1))


def widen_reviews(root: Path) -> None:
    """The 'done means' change: ratings may now call reviews; the split goes 90/10 -> 50/50."""
    reviews = root / "policies" / "reviews.yaml"
    edit(
        reviews,
        "  - from: [{service: productpage}]\n",
        "  - from: [{service: productpage}, {service: ratings}]\n",
    )
    edit(reviews, "split: {v1: 90, v3: 10}", "split: {v1: 50, v3: 50}")
