"""The compiler's entry points: `load_tree` (files from disk) and `compile_tree` (pure).

`compile_tree` is a function of the file contents, the time and the rollout state only.
Per-file work (parse, classify, validate) is cached by content hash in a `FileCache`, and
the findings of the subject rules per service and input fingerprint in a `LintCache`
(`compiler.lint.subjects`): together they make an in-process re-lint after a one-file
change cheap. Neither cache can change a result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from compiler.config import ProjectConfig, parse_config
from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.gcpause import paused_gc
from compiler.kinds import KIND_NAMES, KINDS, load_checks
from compiler.lint.engine import finalize, run_rules
from compiler.lint.registry import LintContext
from compiler.lint.subjects import LintCache
from compiler.lint.suppress import Suppression, scan_suppressions
from compiler.load.discover import PolicyTree, discover_tree, read_config
from compiler.load.documents import Document, classify_documents
from compiler.load.yamlnodes import parse_source
from compiler.model.delta import resolve_changed
from compiler.model.mesh import MeshModel, resolve_model
from compiler.validate import Intent, validate_document


@dataclass(slots=True)
class FileResult:
    """Everything derived from one file's bytes alone."""

    file: str
    lines: list[str]
    documents: list[Document]
    intents: list[Intent[Any]]
    problems: list[Diagnostic]
    skipped: list[str]
    found_suppressions: list[Suppression] | None = None
    """The file's inline suppressions, scanned on first use (`suppressions`)."""

    def suppressions(self) -> list[Suppression]:
        if self.found_suppressions is None:
            self.found_suppressions = scan_suppressions(self.lines)
        return self.found_suppressions


@dataclass(slots=True)
class FileCache:
    """content hash -> FileResult; share one across compiles to skip unchanged files."""

    entries: dict[tuple[str, str], FileResult] = field(default_factory=dict)
    hashed: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    """id(raw) -> (raw, content_key(raw)): a tree read through a `BlobCache` hands out the
    same bytes objects for unchanged blobs, so a re-compile hashes only the changed files
    (raw is kept in the entry, so its id cannot be reused meanwhile)."""
    last: LastCompile | None = None
    """The files and model of the last compile through this cache: the next compile
    re-resolves that model when only a few files changed (`compiler.model.delta`)."""

    def digest(self, raw: bytes) -> str:
        """`content_key(raw)`, memoised by the bytes object."""
        hit = self.hashed.get(id(raw))
        if hit is None or hit[0] is not raw:
            hit = self.hashed[id(raw)] = (raw, content_key(raw))
        return hit[1]

    def get_or_build(self, file: str, raw: bytes, *, digest: str | None = None) -> FileResult:
        """The result for these bytes (`digest`: their `content_key`, if already known)."""
        key = (file, digest if digest is not None else content_key(raw))
        hit = self.entries.get(key)
        if hit is None:
            hit = build_file(file, raw)
            self.entries[key] = hit
        return hit


@dataclass(frozen=True, slots=True)
class LastCompile:
    results: dict[str, FileResult]
    model: MeshModel
    rollout_state: Mapping[str, int]


_DELTA_SHARE = 8
"""Re-resolve from the last model only when at most 1/8 of the files changed."""


def content_key(raw: bytes) -> str:
    """The content half of a FileCache key (the on-disk cache uses the same)."""
    return hashlib.sha256(raw).hexdigest()


def build_file(file: str, raw: bytes) -> FileResult:
    """Parse, classify and validate one file; any input gives a result, never an exception."""
    try:
        return _build_file(file, raw)
    except Exception as exc:  # a loader bug must be a located finding, not a traceback
        problem = Diagnostic(
            "MC000",
            Span(file),
            f"internal error while reading this file ({type(exc).__name__})",
            "please report this input to the meshc maintainers",
        )
        return FileResult(file, [], [], [], [problem], [])


def _build_file(file: str, raw: bytes) -> FileResult:
    parsed = parse_source(file, raw)
    documents, problems, skipped = classify_documents(parsed, KIND_NAMES)
    problems = [*parsed.problems, *problems]
    intents: list[Intent[Any]] = []
    for doc in documents:
        intent, errors = validate_document(doc, KINDS[doc.kind])
        problems.extend(errors)
        if intent is not None:
            intents.append(intent)
    return FileResult(file, parsed.lines, documents, intents, problems, skipped)


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
    intents: list[Intent[Any]],
    results: dict[str, FileResult],
    last: LastCompile | None,
    rollout_state: Mapping[str, int],
) -> MeshModel:
    """The model, re-resolved from the last compile's when few files changed since (and
    the rollout state, which later phases read beside the model, is the same)."""
    if last is not None and last.rollout_state == rollout_state:
        before = last.results
        changed = [f for f in results.keys() | before.keys() if results.get(f) is not before.get(f)]
        if len(changed) * _DELTA_SHARE <= len(results):
            model = resolve_changed(
                last.model,
                removed={f: before[f].intents for f in changed if f in before},
                added={f: results[f].intents for f in changed if f in results},
            )
            if model is not None:
                return model
    return resolve_model(intents)


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
    files = sorted(tree.files.items())
    digests = {file: cache.digest(raw) for file, raw in files}
    if len(cache.hashed) > 2 * len(tree.files) + 64:  # keep this tree's, drop the rest
        cache.hashed = {id(raw): (raw, digests[file]) for file, raw in tree.files.items()}
    build = cache.get_or_build
    results = {file: build(file, raw, digest=digests[file]) for file, raw in files}
    intents: list[Intent[Any]] = []
    raw_diagnostics = [*tree.problems, *config_problems]
    suppressions: dict[str, list[Suppression]] = {}
    notes: list[str] = []
    for file, result in results.items():  # one pass: a re-plan compiles ~1,000 files
        intents.extend(result.intents)
        raw_diagnostics.extend(result.problems)
        if found := result.suppressions():
            suppressions[file] = found
        notes.extend(f"{file}: skipped {what} (not a meshc document)" for what in result.skipped)
    state = dict(rollout_state or {})
    last = cache.last  # keeps the previous model alive while the rules patch its results
    model = _resolved(intents, results, last, state)
    cache.last = LastCompile(results, model, state)
    raw_diagnostics.extend(
        run_rules(LintContext(model=model, now=now), digests=digests, cache=lint_cache)
    )
    diagnostics = finalize(raw_diagnostics, config=config.lint, suppressions=suppressions)
    return Compilation(
        files=results,
        model=model,
        diagnostics=diagnostics,
        notes=notes,
        now=now,
        rollout_state=state,
        config=config,
    )
