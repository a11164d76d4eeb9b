"""The compiler's entry points: `load_tree` (files from disk) and `compile_tree` (pure).

`compile_tree` is a function of the file contents, the time and the rollout state only.
A `Session` (owned by the caller: a CLI run, a planner, a reconciler) holds the per-file
results by content hash and the incremental engine's memo tables; compiling a tree through
the session of an earlier compile re-runs only the queries whose recorded inputs changed.
Neither can change a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from compiler.config import ProjectConfig, parse_config
from compiler.diagnostics import Diagnostic, Severity
from compiler.engine import Engine
from compiler.gcpause import paused_gc
from compiler.kinds import load_checks
from compiler.lint.engine import LintConfig, finalize, rule_findings
from compiler.load.discover import PolicyTree, discover_tree, read_config
from compiler.model.mesh import MeshSnapshot
from compiler.model.placement import Placement
from compiler.model.queries import snapshot
from compiler.treefiles import FileCache, FileResult, build_file, content_key, read_files
from compiler.workloads.queries import set_workload_inputs, workload_findings, workload_notes
from compiler.workloads.sources import NO_WORKLOADS, WorkloadSources

__all__ = [
    "Compilation",
    "FileCache",
    "FileResult",
    "Session",
    "build_file",
    "compile_tree",
    "content_key",
    "load_tree",
]


@dataclass(slots=True)
class Session:
    """What successive compiles share: per-file results and the engine's memo tables.

    Pass the same session to every compile of a run; a compilation keeps a reference to
    it so that its later phases (lowering, meaning) run through the same memo tables."""

    files: FileCache = field(default_factory=FileCache)
    engine: Engine = field(default_factory=Engine)
    kept: int = 0
    """Memos alive after the last collection (see `trim`)."""

    def trim(self) -> None:
        """Drop the memos the last revision did not use once they are as many again as
        those it did (a long watch session would otherwise keep every deleted service's
        memos); amortised, and only ever costs a recomputation, never a result."""
        if len(self.engine) > 2 * self.kept + 4096:
            self.engine.collect()
            self.kept = len(self.engine)


@dataclass(slots=True)
class Compilation:
    """The result of compiling one policy tree."""

    files: dict[str, FileResult]
    model: MeshSnapshot
    diagnostics: list[Diagnostic]
    notes: list[str]
    now: datetime
    rollout_state: Mapping[str, int]
    config: ProjectConfig
    session: Session = field(repr=False)
    tree_problems: tuple[Diagnostic, ...] = field(default=(), repr=False)
    revision: int = field(default=0, repr=False)
    """The engine revision holding this compilation's inputs (the revision only moves
    when an input changes, so an equal one means the inputs are still these)."""
    placement: Placement | None = field(default=None, repr=False)
    """Where workload instances listen (the Envoy backend's input); None: derived from
    the intents' `versions.*.endpoints`."""
    workloads: WorkloadSources = field(default=NO_WORKLOADS, repr=False)
    """The application's manifests the intents were checked against (`--workloads`)."""

    def blocking(self, threshold: Severity = Severity.WARNING) -> list[Diagnostic]:
        return [
            d for d in self.diagnostics if d.severity >= threshold and d.suppressed_reason is None
        ]

    @property
    def ok(self) -> bool:
        """Compiles: no unsuppressed error."""
        return not self.blocking(Severity.ERROR)

    def engine(self) -> Engine:
        """The session's engine, holding this compilation's inputs (set again if another
        compile moved it on since, which re-validates, never recomputes, unchanged work)."""
        engine = self.session.engine
        if engine.revision != self.revision:
            set_inputs(
                engine,
                self.files,
                now=self.now,
                rollout_state=self.rollout_state,
                problems=self.tree_problems,
                lint=self.config.lint,
                placement=self.placement,
                workloads=self.workloads,
            )
            self.revision = engine.mark()
        return engine


def load_tree(root: Path) -> PolicyTree:
    """Read the policy root from disk, honouring meshc.yaml's excludes."""
    excludes: list[str] = []
    if root.is_dir():
        raw, _ = read_config(root)  # a problem is reported again by discover_tree
        excludes = parse_config(raw)[0].excludes
    return discover_tree(root, excludes=excludes)


def set_inputs(
    engine: Engine,
    files: Mapping[str, FileResult],
    *,
    now: datetime,
    rollout_state: Mapping[str, int],
    problems: tuple[Diagnostic, ...],
    lint: LintConfig,
    placement: Placement | None = None,
    workloads: WorkloadSources = NO_WORKLOADS,
) -> None:
    """Make `files` (in name order), `now`, `rollout_state` and `placement` the engine's
    inputs."""
    paths = tuple(files)
    known: tuple[str, ...] = engine.input_or("tree", "files", ())
    for gone in set(known).difference(paths):
        engine.remove_input("file", gone)
    for path, result in files.items():
        engine.set_input("file", path, result)
    engine.set_input("tree", "files", paths)
    engine.set_input("tree", "problems", problems)
    engine.set_input("config", "lint", lint)
    engine.set_input("now", None, now)
    engine.set_input("rollout", None, MappingProxyType(dict(rollout_state)))
    engine.set_input("placement", None, placement)
    set_workload_inputs(engine, workloads)


def compile_tree(
    tree: PolicyTree,
    *,
    now: datetime,
    rollout_state: Mapping[str, int] | None = None,
    session: Session | None = None,
    placement: Placement | None = None,
    workloads: WorkloadSources = NO_WORKLOADS,
) -> Compilation:
    """Compile `tree`; the result depends on the files, `now` and `rollout_state` only
    (and the Envoy backend's output on `placement`: None derives it from the intents;
    the workload findings on the `workloads` manifests).

    `session` makes repeated compiles of similar trees cheap; pass the same one to every
    compile of a run. It never changes the result."""
    with paused_gc():
        return _compile_tree(
            tree,
            now=now,
            rollout_state=rollout_state,
            session=session,
            placement=placement,
            workloads=workloads,
        )


def _compile_tree(
    tree: PolicyTree,
    *,
    now: datetime,
    rollout_state: Mapping[str, int] | None,
    session: Session | None,
    placement: Placement | None = None,
    workloads: WorkloadSources = NO_WORKLOADS,
) -> Compilation:
    load_checks()
    session = session if session is not None else Session()
    config, config_problems = parse_config(tree.config)
    files = read_files(tree, session.files)
    state = dict(rollout_state or {})
    problems = (*tree.problems, *config_problems)
    session.trim()
    engine = session.engine
    set_inputs(
        engine,
        files.results,
        now=now,
        rollout_state=state,
        problems=problems,
        lint=config.lint,
        placement=placement,
        workloads=workloads,
    )
    return Compilation(
        files=files.results,
        model=engine.query(snapshot),
        diagnostics=list(engine.query(diagnostics)),
        notes=[*files.all_notes(), *workloads.skipped, *engine.query(workload_notes)],
        now=now,
        rollout_state=state,
        config=config,
        session=session,
        tree_problems=problems,
        revision=engine.mark(),
        placement=placement,
        workloads=workloads,
    )


def diagnostics(db: Engine) -> tuple[Diagnostic, ...]:
    """The final diagnostics: load, validation and rule findings, with severities,
    configuration and inline suppressions applied, sorted."""
    raw: list[Diagnostic] = list(db.input("tree", "problems"))
    suppressions = {}
    for path in db.input("tree", "files"):
        result: FileResult = db.input("file", path)
        raw.extend(result.problems)
        if found := result.suppressions():
            suppressions[path] = found
    raw.extend(db.query(rule_findings))
    raw.extend(db.query(workload_findings))
    return tuple(finalize(raw, config=db.input("config", "lint"), suppressions=suppressions))
