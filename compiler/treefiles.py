"""The per-file half of a compile: each file's result, kept by content hash.

A file's parse, classification and validation depend on its name and bytes alone, so a
`FileCache` keeps them by content hash and hands out the same `FileResult` object for the
same bytes: that object is the engine's input for the file, and an unchanged one is
recognised by identity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from compiler.diagnostics import Diagnostic, Span
from compiler.kinds import KIND_NAMES, KINDS
from compiler.lint.suppress import SUPPRESSION_MARKER, Suppression, scan_suppressions
from compiler.load.discover import PolicyTree
from compiler.load.documents import Document, classify_documents
from compiler.load.yamlnodes import FileSource, LazyPositions, parse_source
from compiler.validate import Intent, validate_document


@dataclass(slots=True, eq=False)
class FileResult:
    """Everything derived from one file's bytes alone (compared by identity: a
    `FileCache` returns the same object for the same bytes)."""

    file: str
    source: FileSource
    """The bytes; lines and document positions are derived from them when asked."""
    documents: list[Document]
    intents: list[Intent[Any]]
    problems: list[Diagnostic]
    skipped: list[str]
    found_suppressions: list[Suppression] | None = None
    """The file's inline suppressions, scanned on first use (`suppressions`)."""

    @property
    def lines(self) -> list[str]:
        """The file's lines, split again on each call (keep the list if you need it twice;
        `source_lines` does for a report)."""
        return self.source.lines()

    def suppressions(self) -> list[Suppression]:
        if self.found_suppressions is None:
            # only lines with "meshc:" can hold one: most files are never decoded again
            mentioned = self.source.mentions(SUPPRESSION_MARKER)
            self.found_suppressions = scan_suppressions(self.lines) if mentioned else []
        return self.found_suppressions


class _SourceLines(Mapping[str, list[str]]):
    """File -> its lines, split on first lookup and kept for the mapping's life."""

    __slots__ = ("_files", "_split")

    def __init__(self, files: Mapping[str, FileResult]) -> None:
        self._files = files
        self._split: dict[str, list[str]] = {}

    def __getitem__(self, file: str) -> list[str]:
        found = self._split.get(file)
        if found is None:
            found = self._split[file] = self._files[file].lines
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


def source_lines(files: Mapping[str, FileResult]) -> Mapping[str, list[str]]:
    """The lines of `files` for a report, which quotes only the files it has findings in:
    splitting every file up front would hold every line of the tree at once."""
    return _SourceLines(files)


@dataclass(slots=True)
class FileCache:
    """content hash -> FileResult; share one across compiles to skip unchanged files."""

    entries: dict[tuple[str, str], FileResult] = field(default_factory=dict)
    hashed: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    """id(raw) -> (raw, content_key(raw)): a tree read through a `BlobCache` hands out the
    same bytes objects for unchanged blobs, so a re-compile hashes only the changed files
    (raw is kept in the entry, so its id cannot be reused meanwhile)."""

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
        return FileResult(file, FileSource(file, b""), [], [], [problem], [])


def _build_file(file: str, raw: bytes) -> FileResult:
    parsed = parse_source(file, raw)
    documents, problems, skipped = classify_documents(parsed, KIND_NAMES)
    problems = [*parsed.problems, *problems]
    source = FileSource(file, raw)
    kept: list[Document] = []
    intents: list[Intent[Any]] = []
    for doc in documents:
        # validated with the walk's positions (errors are located now); kept with lazy
        # ones, so the walk's tables are freed with this file's parse
        intent, errors = validate_document(doc, KINDS[doc.kind])
        problems.extend(errors)
        lazy = replace(doc, positions=LazyPositions(source, doc.index))
        kept.append(lazy)
        if intent is not None:
            intents.append(Intent(lazy, intent.model))
    return FileResult(file, source, kept, intents, problems, skipped)


@dataclass(frozen=True, slots=True)
class TreeFiles:
    """A tree's files: each one's digest and result, in file-name order."""

    digests: dict[str, str]
    results: dict[str, FileResult]

    def all_notes(self) -> list[str]:
        return [
            f"{file}: skipped {what} (not a meshc document)"
            for file, result in self.results.items()
            for what in result.skipped
        ]


def read_files(tree: PolicyTree, cache: FileCache) -> TreeFiles:
    """Each file's result, from `cache` when its bytes were seen before."""
    ordered = sorted(tree.files.items())
    digests = {file: cache.digest(raw) for file, raw in ordered}
    if len(cache.hashed) > 2 * len(ordered) + 64:  # keep this tree's, drop the rest
        cache.hashed = {id(raw): (raw, digests[file]) for file, raw in ordered}
    build = cache.get_or_build
    results = {file: build(file, raw, digest=digests[file]) for file, raw in ordered}
    return TreeFiles(digests, results)
