"""The compiler's entry points: `load_tree` (files from disk) and `compile_tree` (pure).

`compile_tree` is a function of the file contents, the time and the rollout state only.
Per-file work (parse, classify, validate) is cached by content hash in a `FileCache`
(`compiler.treefiles`), which also lets the next compile patch this one's model when few
files changed (`compiler.model.delta`); and
the findings of the subject rules per service and input fingerprint in a `LintCache`
(`compiler.lint.subjects`): together they make an in-process re-lint after a one-file
change cheap. Neither cache can change a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from compiler.config import ProjectConfig, parse_config
from compiler.diagnostics import Diagnostic, Severity
from compiler.gcpause import paused_gc
from compiler.kinds import load_checks
from compiler.lint.engine import finalize, run_rules
from compiler.lint.registry import LintContext
from compiler.lint.subjects import LintCache
from compiler.load.discover import PolicyTree, discover_tree, read_config
from compiler.model.delta import resolve_changed
from compiler.model.mesh import MeshModel, resolve_model
from compiler.treefiles import (
    PATCH_SHARE,
    FileCache,
    FileResult,
    LastCompile,
    TreeFiles,
    build_file,
    content_key,
    read_files,
)

__all__ = [
    "Compilation",
    "FileCache",
    "FileResult",
    "build_file",
    "compile_tree",
    "content_key",
    "load_tree",
]


@dataclass(slots=True)
class Compilation:
    """The result of compiling one policy tree."""

    files: dict[str, FileResult]
    model: MeshModel
    diagnostics: list[Diagnostic]
    notes: list[str]
    now: datetime
    rollout_state: Mapping[str, int]
    config: ProjectConfig

    def blocking(self, threshold: Severity = Severity.WARNING) -> list[Diagnostic]:
        return [
            d for d in self.diagnostics if d.severity >= threshold and d.suppressed_reason is None
        ]

    @property
    def ok(self) -> bool:
        """Compiles: no unsuppressed error."""
        return not self.blocking(Severity.ERROR)


def _resolved(
    files: TreeFiles, last: LastCompile | None, rollout_state: Mapping[str, int]
) -> MeshModel:
    """The model, re-resolved from the last compile's when few files changed since (and
    the rollout state, which later phases read beside the model, is the same)."""
    changed = files.changed
    if (
        last is not None
        and changed is not None
        and last.rollout_state == rollout_state
        and len(changed) * PATCH_SHARE <= len(files.results)
    ):
        model = resolve_changed(
            last.model,
            removed={file: old for file, (old, _) in changed.items()},
            added={file: new for file, (_, new) in changed.items()},
        )
        if model is not None:
            return model
    return resolve_model(files.intents())


def load_tree(root: Path) -> PolicyTree:
    """Read the policy root from disk, honouring meshc.yaml's excludes."""
    excludes: list[str] = []
    if root.is_dir():
        raw, _ = read_config(root)  # a problem is reported again by discover_tree
        excludes = parse_config(raw)[0].excludes
    return discover_tree(root, excludes=excludes)


def compile_tree(
    tree: PolicyTree,
    *,
    now: datetime,
    rollout_state: Mapping[str, int] | None = None,
    cache: FileCache | None = None,
    lint_cache: LintCache | None = None,
) -> Compilation:
    """Compile `tree`; the result depends on the files, `now` and `rollout_state` only.

    `cache` (per-file results) and `lint_cache` (per-subject lint findings) make repeated
    compiles of similar trees cheap; pass the same objects to every compile of a session.
    Neither changes the result."""
    with paused_gc():
        return _compile_tree(
            tree, now=now, rollout_state=rollout_state, cache=cache, lint_cache=lint_cache
        )


def _compile_tree(
    tree: PolicyTree,
    *,
    now: datetime,
    rollout_state: Mapping[str, int] | None,
    cache: FileCache | None,
    lint_cache: LintCache | None,
) -> Compilation:
    load_checks()
    cache = cache if cache is not None else FileCache()
    config, config_problems = parse_config(tree.config)
    files = read_files(tree, cache)
    state = dict(rollout_state or {})
    last = cache.last  # keeps the previous model alive while the rules patch its results
    model = _resolved(files, last, state)
    cache.last = LastCompile(files, model, state)
    raw_diagnostics = [*tree.problems, *config_problems, *files.all_problems()]
    raw_diagnostics.extend(
        run_rules(LintContext(model=model, now=now), digests=files.digests, cache=lint_cache)
    )
    diagnostics = finalize(raw_diagnostics, config=config.lint, suppressions=files.suppressions)
    return Compilation(
        files=files.results,
        model=model,
        diagnostics=diagnostics,
        notes=files.all_notes(),
        now=now,
        rollout_state=state,
        config=config,
    )
