"""Parsed YAML documents to meshc documents, notes for foreign ones, and errors."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from compiler.diagnostics import Diagnostic, Span
from compiler.load.yamlnodes import ParsedFile, Positions

API_GROUP = "meshc"
API_VERSION = "meshc/v1"


@dataclass(frozen=True, slots=True)
class Document:
    """One meshc document: its kind, raw data and where every node of it sits."""

    file: str
    index: int
    kind: str
    data: dict[str, Any]
    positions: Positions

    @property
    def name(self) -> str:
        meta = self.data.get("metadata")
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    def span(self, *path: str | int) -> Span:
        return self.positions.value(path)

    def key_span(self, *path: str | int) -> Span:
        return self.positions.key(path)


def classify_documents(
    parsed: ParsedFile, known_kinds: frozenset[str]
) -> tuple[list[Document], list[Diagnostic], list[str]]:
    """Split a file's documents into meshc documents, errors, and notes about skipped ones."""
    documents: list[Document] = []
    problems: list[Diagnostic] = []
    skipped: list[str] = []
    if not parsed.documents and not parsed.problems:
        skipped.append("a file with no YAML documents")
    for doc in parsed.documents:
        positions = doc.positions
        if not isinstance(doc.data, dict):
            shape = "a list" if isinstance(doc.data, list) else "a scalar"
            problems.append(
                Diagnostic(
                    "MC103",
                    positions.value(()),
                    f"document is {shape}; expected a mapping (apiVersion, kind, metadata, spec)",
                    "start the document with 'apiVersion: meshc/v1'",
                )
            )
            continue
        api_version = doc.data.get("apiVersion")
        kind = doc.data.get("kind")
        if isinstance(kind, str) and kind in known_kinds:
            wrong = _api_version_problem(kind, api_version, positions)
            if wrong is not None:
                problems.append(wrong)
                continue
        if not _is_ours(api_version):
            skipped.append(_describe_foreign(api_version, kind))
            continue
        if api_version != API_VERSION:
            problems.append(
                Diagnostic(
                    "MC104",
                    positions.value(("apiVersion",)),
                    f"unknown meshc version {api_version!r}",
                    f"use apiVersion: {API_VERSION}",
                )
            )
            continue
        if not isinstance(kind, str) or kind not in known_kinds:
            problems.append(_bad_kind(kind, positions, known_kinds))
            continue
        documents.append(Document(parsed.file, doc.index, kind, doc.data, positions))
    return documents, problems, skipped


def _api_version_problem(kind: str, api_version: Any, positions: Positions) -> Diagnostic | None:
    """A document of one of meshc's kinds whose apiVersion is missing or almost ours.

    Other tools' documents are skipped with a note, so an apiVersion typo on a meshc kind
    would otherwise make a policy silently disappear.
    """
    fix = f"use 'apiVersion: {API_VERSION}'"
    if api_version is None:
        return Diagnostic("MC104", positions.value(()), f"{kind} document has no apiVersion", fix)
    where = positions.value(("apiVersion",))
    if not isinstance(api_version, str):
        return Diagnostic("MC104", where, f"{kind} document: apiVersion must be text", fix)
    group = api_version.split("/", 1)[0].lower()
    if group != API_GROUP and difflib.SequenceMatcher(None, group, API_GROUP).ratio() >= 0.8:
        return Diagnostic(
            "MC104",
            where,
            f"{kind} document: unknown apiVersion {api_version!r}; did you mean {API_VERSION!r}?",
            fix,
        )
    return None


def _bad_kind(kind: Any, positions: Positions, known_kinds: frozenset[str]) -> Diagnostic:
    """A meshc document whose kind is missing, not a string, or not one of ours."""
    choices = "use one of: " + ", ".join(sorted(known_kinds))
    if kind is None:
        return Diagnostic("MC104", positions.value(()), "document has no kind", choices)
    where = positions.value(("kind",))
    if not isinstance(kind, str):
        return Diagnostic("MC104", where, f"kind must be a name, but it is {_shape(kind)}", choices)
    close = difflib.get_close_matches(kind, sorted(known_kinds), n=1, cutoff=0.6)
    if close:
        return Diagnostic(
            "MC104", where, f"unknown meshc kind {kind!r}; did you mean {close[0]!r}?", choices
        )
    return Diagnostic("MC104", where, f"unknown meshc kind {kind!r}", choices)


def _shape(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a boolean" if isinstance(value, bool) else "a number"


def _is_ours(api_version: Any) -> bool:
    return isinstance(api_version, str) and (
        api_version == API_GROUP or api_version.startswith(API_GROUP + "/")
    )


def _describe_foreign(api_version: Any, kind: Any) -> str:
    if api_version is None and kind is None:
        return "a YAML mapping without apiVersion/kind"
    return f"{kind or '?'} ({api_version or 'no apiVersion'})"
