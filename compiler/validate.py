"""Stage 2: documents to typed intents, with pydantic errors mapped to source spans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from compiler.diagnostics import Diagnostic, Span
from compiler.load.documents import Document

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Intent(Generic[M]):
    """A validated document: the typed model plus where it came from."""

    doc: Document
    model: M

    @property
    def file(self) -> str:
        return self.doc.file

    @property
    def ref(self) -> str:
        """`<file>#<Kind>/<namespace>/<name>`, the provenance written on emitted objects."""
        meta = self.model.metadata  # type: ignore[attr-defined]
        return f"{self.doc.file}#{self.doc.kind}/{meta.namespace}/{meta.name}"

    def span(self, *path: str | int) -> Span:
        """The span of `spec.<path>`; missing nodes fall back to their nearest parent."""
        return self.doc.span("spec", *path)

    def key_span(self, *path: str | int) -> Span:
        return self.doc.key_span("spec", *path)


def validate_document(doc: Document, model: type[M]) -> tuple[Intent[M] | None, list[Diagnostic]]:
    try:
        return Intent(doc, model.model_validate(doc.data)), []
    except ValidationError as exc:
        return None, [_to_diagnostic(doc, error) for error in exc.errors(include_url=False)]


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[tuple[str | int, ...], bool]:
    """Follow pydantic's `loc` through the real data; segments that are not keys or
    indexes there (union members, validator names) are dropped by exact match.
    Returns the path and whether it reached the end of `loc`."""
    path: list[str | int] = []
    node = data
    for segment in loc:
        if isinstance(node, dict) and isinstance(segment, str) and segment in node:
            node = node[segment]
            path.append(segment)
        elif isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
            node = node[segment]
            path.append(segment)
    return tuple(path), True


def _to_diagnostic(doc: Document, error: Any) -> Diagnostic:
    loc = tuple(error["loc"])
    path, _ = _data_path(doc.data, loc)
    kind = error["type"]
    field = ".".join(str(s) for s in path) or "document"
    if kind == "extra_forbidden":
        name = loc[-1]
        return Diagnostic(
            "MC105",
            doc.key_span(*path),
            f"unknown field {name!r}",
            "check the spelling; the schema in schemas/ lists the allowed fields",
        )
    if kind == "missing":
        missing = ".".join(str(s) for s in loc if isinstance(s, str | int))
        parent = ".".join(str(s) for s in path) or "the document"
        return Diagnostic(
            "MC106",
            doc.span(*path),
            f"missing required field {missing!r} in {parent}",
            f"add {str(loc[-1])!r}",
        )
    message = _message(error)
    return Diagnostic("MC103", doc.span(*path), f"{field}: {message}", _hint(error))


def _message(error: Any) -> str:
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, ") :]
    if error["type"] == "string_pattern_mismatch":
        return f"{error['input']!r} is not valid here (expected the pattern {error['ctx']['pattern']})"
    if error["type"] == "literal_error":
        return f"{error['input']!r} is not one of {error['ctx']['expected']}"
    return msg[0].lower() + msg[1:] if msg else msg


def _hint(error: Any) -> str:
    kind = error["type"]
    if kind in ("int_type", "int_parsing", "float_type", "float_parsing"):
        return "write a number"
    if kind in ("string_type",):
        return "write a string (quote it if YAML reads it as a number or boolean)"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "write a mapping (key: value)"
    if kind == "list_type":
        return "write a list (- item)"
    return "see the schema in schemas/ for the allowed values"
