"""`meshc rollback REV`: show what reverting REV does, then make the revert commit.

`git revert` is the rollback button of a GitOps repository; this command presses it
safely. The revert is computed first in a throwaway worktree (the user's worktree and
index are untouched until the end), planned against HEAD exactly like `meshc plan`, and
refused when the reverted tree does not compile or when `--ca-status` says it would drop a
root that live certificates still chain to. Only then is the commit made (from the very
tree that was planned) and the branch fast-forwarded to it. It reads and writes Git only:
the reconciler applies the new commit like any other.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import click

from compiler.cli.common import now_option, resolve_now
from compiler.cli.plan import FORMATS, _read_ca_status, _read_rollout_state, format_plan
from compiler.load.discover import PolicyTree
from compiler.load.names import printable
from compiler.plan.engine import Plan, Planner, build_plan
from compiler.plan.mask import mask_text
from compiler.plan.source import (
    GitSource,
    MissingRoot,
    PlanInputError,
    Revision,
    open_source,
    read_commit_tree,
    resolve_revision,
)

GIT_TIMEOUT_SECONDS = 60


class RollbackRefused(Exception):
    """Why no revert commit was made (one line for the user)."""


@click.command("rollback")
@click.argument("rev", metavar="REV")
@click.option(
    "--repo",
    "repo_dir",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="A directory inside the Git repository; without --path it is also the policy root.",
)
@click.option(
    "--path",
    "policy_path",
    default=None,
    metavar="SUBDIR",
    help="The policy root, relative to the repository's top level (default: --repo's directory).",
)
@click.option(
    "--mainline",
    type=click.IntRange(min=1),
    default=None,
    help="For a merge commit: the parent number whose side the revert keeps (as git revert -m).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--dry-run", is_flag=True, help="Show the plan of the revert; make no commit.")
@click.option(
    "--rollout-state",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="JSON/YAML mapping of Rollout (namespace/name) to its current step (default: step 0).",
)
@click.option(
    "--ca-status",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Keyless CA status (`meshd ca status --format json`); refuse dropping live roots.",
)
@now_option
def rollback_command(
    rev: str,
    repo_dir: Path,
    policy_path: str | None,
    mainline: int | None,
    fmt: str,
    dry_run: bool,
    rollout_state: Path | None,
    ca_status: Path | None,
    now: datetime | None,
) -> None:
    """Revert REV: print the plan of the revert, then commit it (exit 2 when refused)."""
    when = resolve_now(now)
    state = _read_rollout_state(rollout_state)[0] if rollout_state else {}
    status = _read_ca_status(ca_status) if ca_status else None
    try:
        source = open_source(repo_dir, policy_path)
    except PlanInputError as exc:
        _fail(str(exc))
    try:
        git = _Git(source.top)
        _require_clean(git)
        target = resolve_revision(source, rev)
        head = resolve_revision(source, "HEAD")
        assert target.commit is not None and head.commit is not None
        tree = _revert_tree(git, target.commit, mainline)
        planner = Planner()
        base_side = planner.compile_side(
            head, _read(source, head, planner), now=when, rollout_state=state
        )
        reverted = Revision(f"revert of {target.commit[:12]}", None, tree)
        head_side = planner.compile_side(
            reverted, _read(source, reverted, planner), now=when, rollout_state=state
        )
        plan = build_plan(base_side, head_side, now=when, ca_status=status, notes=[])
        sys.stdout.write(format_plan(plan, fmt))
        _refuse_if_failed(plan)
        if dry_run:
            click.echo("meshc rollback: --dry-run: no commit made", err=True)
            return
        commit = _commit_revert(git, tree, head.commit, target.commit)
    except (PlanInputError, RollbackRefused) as exc:
        _fail(str(exc))
    finally:
        source.repo.close()  # type: ignore[attr-defined]
    click.echo(f"meshc rollback: created {commit[:12]} reverting {target.commit[:12]}", err=True)


class _Git:
    """`git` through gitpython, as `meshc plan` reads the repository: at the top level (or
    `cwd`), with a bounded time; a failure is the refusal, with git's last line."""

    def __init__(self, top: Path) -> None:
        self.top = top

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        import git

        try:
            status, out, err = git.Git(cwd or self.top).execute(
                ["git", *args],
                with_extended_output=True,
                with_exceptions=False,
                kill_after_timeout=GIT_TIMEOUT_SECONDS,
                env={"GIT_TERMINAL_PROMPT": "0"},
            )
        except git.GitCommandNotFound as exc:
            raise RollbackRefused(f"git {args[0]}: could not run ({exc})") from None
        if check and status != 0:
            lines = [line for line in str(err).splitlines() if line.strip()]
            raise RollbackRefused(f"git {args[0]}: {lines[-1] if lines else 'failed'}")
        return str(out).strip()


def _require_clean(git: _Git) -> None:
    """Tracked changes would be mixed into (or lost by) the revert: refuse them."""
    changed = git.run("status", "--porcelain", "--untracked-files=no")
    if changed:
        first = changed.splitlines()[0][3:]
        raise RollbackRefused(
            f"the worktree has uncommitted changes ({first}, ...); commit or stash them first"
        )


def _revert_tree(git: _Git, commit: str, mainline: int | None) -> str:
    """The tree `git revert` makes of HEAD, computed in a throwaway worktree."""
    parents = git.run("rev-list", "--parents", "-n", "1", commit).split()[1:]
    if len(parents) > 1 and mainline is None:
        raise RollbackRefused(
            f"{commit[:12]} is a merge of {len(parents)} parents; pass --mainline N "
            "(1 keeps the branch it was merged into)"
        )
    with tempfile.TemporaryDirectory(prefix="meshc-rollback-") as scratch:
        work = Path(scratch) / "tree"
        git.run("worktree", "add", "--detach", "--quiet", str(work), "HEAD")
        try:
            args = ["revert", "--no-commit"]
            if mainline is not None:
                args += ["-m", str(mainline)]
            try:
                git.run(*args, commit, cwd=work)
            except RollbackRefused:
                raise RollbackRefused(
                    f"{commit[:12]} does not revert cleanly on HEAD (later commits changed "
                    "the same lines); revert it by hand with `git revert` and resolve"
                ) from None
            return git.run("write-tree", cwd=work)
        finally:
            git.run("worktree", "remove", "--force", str(work), check=False)
            git.run("worktree", "prune", check=False)


def _read(source: GitSource, revision: Revision, planner: Planner) -> PolicyTree:
    try:
        return read_commit_tree(source, revision, planner.blobs)
    except MissingRoot:
        return PolicyTree()


def _refuse_if_failed(plan: Plan) -> None:
    if not plan.head.compiles:
        raise RollbackRefused(
            "the reverted tree does not compile (see the report above); no commit made"
        )
    if plan.failed:
        raise RollbackRefused(
            "--ca-status refuses the reverted tree: it drops a root that live certificates "
            "chain to (see the report above); no commit made"
        )


def _commit_revert(git: _Git, tree: str, head: str, commit: str) -> str:
    subject = git.run("log", "-1", "--format=%s", commit)
    message = f'Revert "{subject}"\n\nThis reverts commit {commit}.\n'
    created = git.run("commit-tree", tree, "-p", head, "-m", message)
    git.run("merge", "--ff-only", "--quiet", created)
    return created


def _fail(message: str) -> NoReturn:
    click.echo(f"meshc rollback: {printable(mask_text(message))}", err=True)
    sys.exit(2)
