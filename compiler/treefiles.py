"""The per-file half of a compile: each file's result, and the tree's collections of them.

A file's parse, classification and validation depend on its bytes alone, so a
`FileCache` keeps them by content hash. The tree-wide collections a compile needs (each
file's digest, result, problems, suppressions and notes) are patched from the last
compile's when few files changed: a tree read through a `BlobCache` hands out the same
bytes object for an unchanged blob, so a re-plan after a one-file edit touches one file
here instead of a thousand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from compiler.diagnostics import Diagnostic, Span
from compiler.kinds import KIND_NAMES, KINDS
from compiler.lint.suppress import Suppression, scan_suppressions
from compiler.load.discover import PolicyTree
from compiler.load.documents import Document, classify_documents
from compiler.load.yamlnodes import parse_source
from compiler.model.mesh import MeshModel
from compiler.validate import Intent, validate_document

PATCH_SHARE = 8
"""Patch the last compile's collections (and model) only when at most 1/8 of the files
changed; beyond that, rebuilding them is as cheap."""


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
    patches them when only a few files changed (`read_files`, `compiler.model.delta`)."""

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


Changed = dict[str, tuple[list[Intent[Any]], list[Intent[Any]]]]
"""A changed file -> its intents in the last compile and in this one (a file created or
deleted has an empty list on one side)."""


@dataclass(frozen=True, slots=True)
class TreeFiles:
    """A tree's files and what a compile collects from them, file by file."""

    raw: Mapping[str, bytes]
    digests: dict[str, str]
    results: dict[str, FileResult]
    """In file-name order (the order every later phase reads documents in)."""
    problems: dict[str, list[Diagnostic]]
    """The load and validation problems of the files that have any."""
    suppressions: dict[str, list[Suppression]]
    """The inline suppressions of the files that have any."""
    notes: dict[str, list[str]]
    """Skipped documents, per file that has any."""
    changed: Changed | None
    """The files that differ from the last compile's (None: there was none)."""

    def intents(self) -> list[Intent[Any]]:
        return [intent for result in self.results.values() for intent in result.intents]

    def all_problems(self) -> list[Diagnostic]:
        return [problem for found in self.problems.values() for problem in found]

    def all_notes(self) -> list[str]:
        return [note for file in sorted(self.notes) for note in self.notes[file]]


@dataclass(frozen=True, slots=True)
class LastCompile:
    files: TreeFiles
    model: MeshModel
    rollout_state: Mapping[str, int]


def read_files(tree: PolicyTree, cache: FileCache) -> TreeFiles:
    """The tree's per-file collections, patched from the last compile's when few of its
    bytes objects differ."""
    last = cache.last.files if cache.last is not None else None
    if last is not None:
        patched = _patched(tree.files, last, cache)
        if patched is not None:
            return patched
    return _collected(tree.files, last, cache)


def _collected(files: Mapping[str, bytes], last: TreeFiles | None, cache: FileCache) -> TreeFiles:
    ordered = sorted(files.items())
    digests = {file: cache.digest(raw) for file, raw in ordered}
    if len(cache.hashed) > 2 * len(files) + 64:  # keep this tree's, drop the rest
        cache.hashed = {id(raw): (raw, digests[file]) for file, raw in files.items()}
    build = cache.get_or_build
    results = {file: build(file, raw, digest=digests[file]) for file, raw in ordered}
    collected = TreeFiles(dict(files), digests, results, {}, {}, {}, None)
    for file, result in results.items():
        _collect(collected, file, result)
    if last is None:
        return collected
    before = last.results
    changed = {
        file: (_intents(before.get(file)), _intents(results.get(file)))
        for file in results.keys() | before.keys()
        if results.get(file) is not before.get(file)
    }
    return replace(collected, changed=changed)


def _patched(files: Mapping[str, bytes], last: TreeFiles, cache: FileCache) -> TreeFiles | None:
    """`last` with the files whose bytes object differs redone; None when too many do."""
    before = last.raw
    edited = [file for file, raw in files.items() if before.get(file) is not raw]
    created = [file for file in edited if file not in before]
    gone = (
        [file for file in before if file not in files]
        if created or len(files) != len(before)
        else []
    )
    if (len(edited) + len(gone)) * PATCH_SHARE > len(files):
        return None
    digests = dict(last.digests)
    results = dict(last.results)
    changed: Changed = {}
    patched = TreeFiles(
        dict(files),
        digests,
        results,
        dict(last.problems),
        dict(last.suppressions),
        dict(last.notes),
        changed,
    )
    for file in gone:
        del digests[file], results[file]
        _forget(patched, file)
    for file in edited:
        digests[file] = cache.digest(files[file])
        results[file] = result = cache.get_or_build(file, files[file], digest=digests[file])
        _forget(patched, file)
        _collect(patched, file, result)
    for file in [*edited, *gone]:
        old, new = last.results.get(file), results.get(file)
        if old is not new:
            changed[file] = (_intents(old), _intents(new))
    if created or gone:  # keep file-name order, as every later phase reads documents in
        return replace(patched, results=dict(sorted(results.items())))
    return patched


def _collect(files: TreeFiles, file: str, result: FileResult) -> None:
    if result.problems:
        files.problems[file] = result.problems
    if found := result.suppressions():
        files.suppressions[file] = found
    if result.skipped:
        files.notes[file] = [
            f"{file}: skipped {what} (not a meshc document)" for what in result.skipped
        ]


def _forget(files: TreeFiles, file: str) -> None:
    files.problems.pop(file, None)
    files.suppressions.pop(file, None)
    files.notes.pop(file, None)


def _intents(result: FileResult | None) -> list[Intent[Any]]:
    return result.intents if result is not None else []
