"""`meshc lint`: check intent files and report findings."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from compiler.cli.common import (
    SeverityType,
    allow_empty_option,
    has_meshc_documents,
    in_scope,
    now_option,
    policy_root,
    refuse_empty,
    resolve_now,
)
from compiler.diagnostics import Severity
from compiler.gcpause import paused_gc

if TYPE_CHECKING:
    from compiler.api import Compilation
    from compiler.load.discover import PolicyTree
    from compiler.workloads.sources import WorkloadSources

FORMATS = ("text", "json", "sarif", "github", "junit")


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--fail-on",
    type=SeverityType(),
    default="warning",
    show_default=True,
    help="Exit 1 when a finding at or above this severity is not suppressed.",
)
@click.option("--show-suppressed", is_flag=True, help="Also list suppressed findings (text).")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Do not read or write the on-disk cache (also: MESHC_NO_CACHE=1).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to keep the cache [default: <root>/.meshc_cache].",
)
@click.option(
    "--crds",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also lower to Istio and validate the objects against these CRD files (repeatable).",
)
@click.option(
    "--workloads",
    "workload_paths",
    multiple=True,
    metavar="DIR|FILE|-",
    help="Also check the intents against these Kubernetes manifests: a directory, a file, or "
    "- for `helm template`/`kustomize build` output on stdin (repeatable; replaces "
    "meshc.yaml's workloads:).",
)
@click.option(
    "--workloads-namespace",
    default="default",
    show_default=True,
    metavar="NAMESPACE",
    help="The namespace of manifest objects that name none (as kubectl -n would place them).",
)
@allow_empty_option
@now_option
def lint_command(
    paths: tuple[Path, ...],
    fmt: str,
    fail_on: Severity,
    show_suppressed: bool,
    no_cache: bool,
    cache_dir: Path | None,
    crds: tuple[Path, ...],
    workload_paths: tuple[str, ...],
    workloads_namespace: str,
    allow_empty: bool,
    now: datetime | None,
) -> None:
    """Lint the policy root at PATH (default: .); file paths narrow what is reported."""
    from rich.console import Console

    from compiler.api import load_tree
    from compiler.treefiles import source_lines

    root, narrow = policy_root(paths)
    from compiler.cli.lint_crds import crd_findings, load_crds

    crd_set = load_crds(crds) if crds else None
    when = resolve_now(now)
    cache_at = None if no_cache else (cache_dir or default_cache_dir(root))
    tree = load_tree(root)
    workloads = read_workload_sources(
        root, tree.config, workload_paths, namespace=workloads_namespace
    )
    with paused_gc():
        compilation = compile_with_cache(tree, now=when, cache_dir=cache_at, workloads=workloads)
        # The compilation lives until the process ends. Left in the youngest generation,
        # the first collection after GC resumes would walk all ~10^6 of its objects
        # (~0.1 s on 1,000 services); frozen, collections skip them.
        gc.freeze()
    if not allow_empty and not has_meshc_documents(compilation):
        refuse_empty("lint", root)
    found, crd_notes = (
        crd_findings(compilation, crd_set) if crd_set is not None else (compilation.diagnostics, [])
    )
    manifests = workloads.files
    # file arguments narrow the intents reported; a manifest's own problems always show
    diagnostics = [d for d in found if in_scope(d.span.file, narrow) or d.span.file in manifests]
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for note in [*compilation.notes, *crd_notes]:
        err.print(f"note: {note}")
    lines = _Lines(source_lines(compilation.files), manifest_lines(workloads))
    if fmt == "text":
        console = Console(highlight=False, soft_wrap=True)
        if now is None and any(d.code in TIME_DEPENDENT for d in diagnostics):
            console.print(f"(evaluated at {when.isoformat()})")
        from compiler.report.text import render_text

        render_text(diagnostics, lines, console, show_suppressed=show_suppressed)
    else:
        from compiler.report import formats

        sys.stdout.write(formats.render(fmt, diagnostics, lines=lines, root=root, now=when))
    failing = [d for d in diagnostics if d.severity >= fail_on and d.suppressed_reason is None]
    _FINISHED.append(True)
    sys.exit(1 if failing else 0)


_FINISHED: list[bool] = []


def lint_finished() -> bool:
    """Whether a lint run in this process wrote all its output (and its cache)."""
    return bool(_FINISHED)


def exit_without_teardown(code: int) -> NoReturn:
    """End the process without freeing the compiled tree object by object.

    Tearing down the ~10^6 objects of a 1,000-service compilation takes ~0.4 s, longer than
    a cached re-run's own work. Only the console entry point calls this, after lint has
    written everything; output is flushed first (the way mypy ends its runs).
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


TIME_DEPENDENT = frozenset({"MC401", "MC402"})


def default_cache_dir(root: Path) -> Path:
    from compiler.cache import CACHE_DIR_NAME

    return (root if root.is_dir() else root.parent) / CACHE_DIR_NAME


def compile_with_cache(
    tree: PolicyTree,
    *,
    now: datetime,
    cache_dir: Path | None,
    workloads: WorkloadSources | None = None,
) -> Compilation:
    """Compile with the on-disk cache unless it is off (None, MESHC_NO_CACHE) or unusable.

    The cache pre-fills the per-file stage by content, so findings are identical either way.
    """
    from compiler.api import Session, compile_tree
    from compiler.workloads.sources import NO_WORKLOADS

    manifests = workloads if workloads is not None else NO_WORKLOADS
    if cache_dir is None:
        return compile_tree(tree, now=now, workloads=manifests)
    from compiler import cache

    disk = None if cache.cache_disabled(False) else cache.open_cache(cache_dir)
    if disk is None:
        return compile_tree(tree, now=now, workloads=manifests)
    stored = cache.read_stored(disk)
    file_cache = cache.restore_file_cache(stored.entries, tree.files)
    compilation = compile_tree(
        tree, now=now, session=Session(files=file_cache), workloads=manifests
    )
    cache.save_file_cache(disk, tree.files, file_cache, stored=stored)
    return compilation


def read_workload_sources(
    root: Path, config: bytes | None, given: tuple[str, ...], *, namespace: str
) -> WorkloadSources:
    """The manifests to check against: `--workloads` (relative to the working directory),
    else meshc.yaml's `workloads:` (relative to meshc.yaml). A path that cannot be read
    ends the run with exit 2, naming it (and, from meshc.yaml, where it is written)."""
    from compiler.config import parse_config
    from compiler.kinds.common import DNS_LABEL
    from compiler.workloads.sources import WorkloadPathError, read_workloads

    if not re.match(DNS_LABEL, namespace) or len(namespace) > 63:
        raise click.BadParameter(
            f"{namespace!r} is not a namespace name (lower-case letters, digits and '-')",
            param_hint="--workloads-namespace",
        )
    base = root if root.is_dir() else root.parent
    paths = list(given)
    if not given:
        for entry in parse_config(config)[0].workloads:
            full = base / entry.path
            if not full.exists():
                _usage_error(
                    f"{base / entry.span.file}:{entry.span.line}:{entry.span.col}: workloads: "
                    f"{entry.path}: no such file or directory (paths in meshc.yaml are "
                    "relative to it)"
                )
            paths.append(str(full))
    try:
        return read_workloads(paths, root=root, stdin=_read_stdin, default_namespace=namespace)
    except WorkloadPathError as exc:
        _usage_error(f"--workloads: {exc}" if given else f"meshc.yaml workloads: {exc}")


def _read_stdin() -> bytes:
    """Standard input's bytes; a terminal would wait for input nobody meant to type."""
    if sys.stdin is None or sys.stdin.isatty():
        _usage_error(
            "--workloads -: standard input is a terminal; pipe the manifests in (e.g. "
            "helm template ... | meshc lint --workloads -)"
        )
    return sys.stdin.buffer.read()


def _usage_error(message: str) -> NoReturn:
    click.echo(f"meshc lint: {message}", err=True)
    sys.exit(2)


def manifest_lines(workloads: WorkloadSources) -> dict[str, list[str]]:
    """Each manifest's lines, for quoting a finding in it (MC701)."""
    return {
        name: raw.decode("utf-8", "replace").splitlines() for name, raw in workloads.files.items()
    }


class _Lines(Mapping[str, list[str]]):
    """The intents' lines (split lazily, as `source_lines` does), then the manifests'."""

    def __init__(self, intents: Mapping[str, list[str]], manifests: dict[str, list[str]]) -> None:
        self._intents = intents
        self._manifests = manifests

    def __getitem__(self, file: str) -> list[str]:
        return self._manifests[file] if file in self._manifests else self._intents[file]

    def __iter__(self) -> Iterator[str]:
        yield from self._intents
        yield from (file for file in self._manifests if file not in self._intents)

    def __len__(self) -> int:
        return sum(1 for _ in self)
