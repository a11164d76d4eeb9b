"""`meshc plan`: what a change does, compiled from Git objects without touching the worktree."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from compiler.cli.common import (
    allow_empty_option,
    has_meshc_documents,
    now_option,
    resolve_now,
    rollout_steps,
)
from compiler.load.discover import PolicyTree
from compiler.load.names import printable
from compiler.plan.ca import CaStatusError, load_ca_status
from compiler.plan.engine import Plan, Planner, build_plan
from compiler.plan.markdown import render_markdown
from compiler.plan.mask import mask_text
from compiler.plan.report import context_edges, plan_document
from compiler.plan.source import (
    WORKTREE,
    GitSource,
    MissingRoot,
    PlanInputError,
    Revision,
    open_source,
    read_commit_tree,
    read_worktree,
    resolve_revision,
)
from compiler.plan.text import render_text

FORMATS = ("text", "json", "markdown")
_MAX_STATE_BYTES = 1024 * 1024


@click.command("plan")
@click.option(
    "--base", "base_ref", required=True, metavar="REF", help="The revision to compare against."
)
@click.option(
    "--head",
    "head_ref",
    default=None,
    metavar="REF",
    help="The revision to plan (default: the worktree, with uncommitted and untracked edits).",
)
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
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing changes, 1 when something does, 2 on error.",
)
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
    help="Keyless CA status (`meshd ca status --format json`); refuse heads that drop live roots.",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Do not read the on-disk lint cache (also: MESHC_NO_CACHE=1).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The lint cache to read [default: <policy root>/.meshc_cache]; plan never writes it.",
)
@allow_empty_option
@now_option
def plan_command(
    base_ref: str,
    head_ref: str | None,
    repo_dir: Path,
    policy_path: str | None,
    fmt: str,
    detailed_exitcode: bool,
    rollout_state: Path | None,
    ca_status: Path | None,
    no_cache: bool,
    cache_dir: Path | None,
    allow_empty: bool,
    now: datetime | None,
) -> None:
    """Compare the policy root at --base with --head: resources, meaning and risk flags.

    Exit codes: 2 when head or base does not compile, --ca-status refuses head, or the
    input is bad; otherwise 0 (with --detailed-exitcode: 0 no changes, 1 changes). A base
    that does not compile is still planned against: the report says so and shows head's
    content as all new, then plan exits 2. A base without meshc documents is an empty
    side; a head without any is refused (exit 2) unless --allow-empty: it would plan the
    removal of every object.
    """
    if policy_path is not None and not policy_path.strip():
        _fail(
            "--path: empty; name the policy root relative to the repository's top level "
            "(or '.' for the top level itself)"
        )
    when = resolve_now(now)
    state, raw_state = _read_rollout_state(rollout_state) if rollout_state else ({}, b"")
    status = _read_ca_status(ca_status) if ca_status else None
    plan = compute_plan(
        repo_dir,
        base_ref=base_ref,
        head_ref=head_ref,
        policy_path=policy_path,
        now=when,
        rollout_state=state,
        ca_status=status,
        disk_cache=None if no_cache else (cache_dir or _DEFAULT_CACHE),
    )
    if not allow_empty and not has_meshc_documents(plan.head.compilation):
        _fail(
            f"head ({plan.head.revision.label}): {policy_path or repo_dir}: no meshc document "
            "under the policy root (no YAML file with 'apiVersion: meshc/v1'); check --repo "
            "and --path, or pass --allow-empty to plan removing everything"
        )
    if rollout_state is not None:
        _check_rollout_state(rollout_state, raw_state, state, plan)
    sys.stdout.write(format_plan(plan, fmt))
    if plan.failed:
        reason = "head does not compile" if not plan.head.compiles else "--ca-status refuses head"
        click.echo(f"meshc plan: {reason}; see the report above", err=True)
        sys.exit(2)
    if not plan.base.compiles:
        click.echo(
            f"meshc plan: base ({plan.base.revision.label}) does not compile; head is shown "
            "against an empty base (see the report above); fix the base branch or plan "
            "against an earlier revision that compiles",
            err=True,
        )
        sys.exit(2)
    sys.exit(1 if detailed_exitcode and plan.changed else 0)


def compute_plan(
    repo_dir: Path,
    *,
    base_ref: str,
    head_ref: str | None,
    policy_path: str | None,
    now: datetime,
    rollout_state: dict[str, int],
    ca_status: Any | None,
    planner: Planner | None = None,
    disk_cache: Path | None = None,
) -> Plan:
    """Read both sides from Git (head: the worktree when no ref) and build the plan.

    `disk_cache`: a lint cache directory to pre-fill the per-file stage from (relative
    paths are inside the policy root); read only — plan never writes the worktree."""
    planner = planner if planner is not None else Planner()
    notes: list[str] = []
    try:
        source = open_source(repo_dir, policy_path)
    except PlanInputError as exc:
        _fail(str(exc))
    try:
        base_rev = resolve_revision(source, base_ref)
        try:
            base_tree: PolicyTree = read_commit_tree(source, base_rev, planner.blobs)
        except MissingRoot:
            # The change that adds the policy root: plan it against nothing.
            base_tree = PolicyTree()
            notes.append(
                f"base ({printable(base_ref)}) has no {source.prefix or 'policy root'} directory: "
                "everything head holds is new"
            )
        if head_ref is None:
            head_rev = Revision(WORKTREE, None, None)
            head_tree = read_worktree(source)
        else:
            head_rev = resolve_revision(source, head_ref)
            head_tree = read_commit_tree(source, head_rev, planner.blobs)
    except PlanInputError as exc:
        _fail(str(exc))
    except Exception as exc:  # gitpython raises many types for a damaged repository
        _fail(
            f"{repo_dir}: cannot read the Git repository ({type(exc).__name__}: {exc}); "
            "check it with `git fsck`"
        )
    finally:
        source.repo.close()  # type: ignore[attr-defined]
    if disk_cache is not None:
        directory = disk_cache if disk_cache.is_absolute() else _root_dir(source) / disk_cache
        _prefill(planner, directory, (base_tree, head_tree))
    base = planner.compile_side(base_rev, base_tree, now=now, rollout_state=rollout_state)
    head = planner.compile_side(head_rev, head_tree, now=now, rollout_state=rollout_state)
    return build_plan(base, head, now=now, ca_status=ca_status, notes=notes, diffs=planner.diffs)


_DEFAULT_CACHE = Path(".meshc_cache")


def _root_dir(source: GitSource) -> Path:
    return source.top / source.prefix if source.prefix else source.top


def _prefill(planner: Planner, directory: Path, trees: tuple[PolicyTree, ...]) -> None:
    """Reuse what `meshc lint` cached for unchanged files; findings are identical either
    way (the cache only holds the per-file stage). A missing or unusable cache is skipped."""
    from compiler import cache

    if cache.cache_disabled(False) or not directory.is_dir():
        return
    disk = cache.open_cache(directory)
    if disk is None:
        return
    stored = cache.read_entries(disk)
    for tree in trees:
        planner.session.files.entries.update(cache.restore_file_cache(stored, tree.files).entries)


def format_plan(plan: Plan, fmt: str) -> str:
    document = plan_document(plan)
    if fmt == "json":
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "markdown":
        text = "\n".join(render_markdown(document, context=context_edges(plan)))
    else:
        text = render_text(document)
    return mask_text(text)


def _fail(message: str) -> NoReturn:
    """One line on stderr, nothing on stdout, exit 2: a bad flag, file or repository."""
    click.echo(f"meshc plan: {printable(mask_text(message))}", err=True)
    sys.exit(2)


def _read_small(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_STATE_BYTES + 1)
    except OSError as exc:
        _fail(f"{what} {path}: cannot read it ({exc.strerror}); check the path")
    if len(raw) > _MAX_STATE_BYTES:
        _fail(f"{what} {path}: larger than {_MAX_STATE_BYTES} bytes; pass the small status file")
    return raw


def _read_rollout_state(path: Path) -> tuple[dict[str, int], bytes]:
    """`bookinfo/reviews: 2`: each progressive Rollout's current step (the render format),
    and the file's bytes (to locate a key the trees do not know)."""
    from compiler.lower.rollout_state import RolloutStateError, parse_rollout_state

    raw = _read_small(path, "--rollout-state")
    try:
        return parse_rollout_state(str(path), raw), raw
    except RolloutStateError as exc:
        _fail(f"--rollout-state {exc}")


def _check_rollout_state(path: Path, raw: bytes, state: dict[str, int], plan: Plan) -> None:
    """Each key must name a Rollout of base or head (the live state may still hold one
    this change removes) and its step must exist on a side that has it (a change may
    shorten a Rollout). A side that does not compile has no Rollouts to check against,
    so the state is checked only when every compiling side is known."""
    from compiler.lower.rollout_state import RolloutStateError, check_rollout_state

    sides = [side.compilation for side in (plan.base, plan.head)]
    if not all(compilation.ok for compilation in sides):
        return
    steps: dict[str, int] = {}
    for compilation in sides:
        for key, count in rollout_steps(compilation).items():
            steps[key] = max(steps.get(key, 0), count)
    try:
        check_rollout_state(str(path), raw, state, steps)
    except RolloutStateError as exc:
        _fail(f"--rollout-state {exc}")


def _read_ca_status(path: Path) -> Any:
    """The status file, refused here (exit 2, nothing on stdout) when its shape is wrong:
    a malformed file is a bad input, not a verdict on head."""
    from compiler.kinds.mesh.ca_status_format import parse_ca_status

    raw = _read_small(path, "--ca-status")
    try:
        status = load_ca_status(raw, source=f"--ca-status {path}")
    except CaStatusError as exc:
        _fail(str(exc))
    _, shape = parse_ca_status(status)
    if shape:
        problems = "; ".join(p.removeprefix("ca-status: ") for p in shape[:3])
        more = f" (and {len(shape) - 3} more)" if len(shape) > 3 else ""
        remedy = "" if "meshd ca status" in problems else "; pass `meshd ca status --format json`"
        _fail(f"--ca-status {path}: {problems}{more}{remedy}")
    return status
