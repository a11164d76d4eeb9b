"""Stage 2: documents to typed intents, with pydantic errors mapped to source spans.

pydantic reports every problem of a document in one `ValidationError`, each with a `loc`
that mixes the user's keys and indexes with segments of its own (union member tags such
as `HashLoadBalancer` or `literal['a','b']`, and `[key]` for a mapping key). The mapping
back to the source follows `loc` through the real data and drops, by exact match, the
segments that are not keys or indexes there. Errors of the members of one union are
folded into one finding, so a wrong `loadBalancer:` reads as one problem, not three.
"""

from __future__ import annotations

import difflib
import math
import re
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from compiler.diagnostics import Diagnostic, Span
from compiler.kinds.common import DNS_LABEL, DURATION_RE, Ref
from compiler.load.documents import Document

M = TypeVar("M", bound=BaseModel)

DataPath = tuple[str | int, ...]

_KEY_SEGMENT = "[key]"
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MISMATCH = frozenset(
    {
        "literal_error",
        "enum",
        "model_type",
        "model_attributes_type",
        "dict_type",
        "list_type",
        "string_type",
        "int_type",
        "int_parsing",
        "int_from_float",
        "float_type",
        "float_parsing",
        "bool_type",
        "bool_parsing",
        "is_instance_of",
        "none_required",
        "string_pattern_mismatch",
    }
)
"""Error types meaning "the value is not of this member's form" (not a deeper problem)."""
_NUMERIC = frozenset(
    {
        "int_type",
        "int_parsing",
        "int_parsing_size",
        "int_from_float",
        "float_type",
        "float_parsing",
        "finite_number",
    }
)


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
    """Validate one document; every problem becomes a located diagnostic, nothing raises."""
    try:
        return Intent(doc, model.model_validate(doc.data)), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return None, diagnostics_for(doc, model, errors)
    except Exception as exc:  # a validator bug must surface as a finding, not a traceback
        return None, [
            Diagnostic(
                "MC000",
                doc.span(),
                f"{doc.kind} document: internal error while validating ({type(exc).__name__})",
                "please report this input to the meshc maintainers",
            )
        ]


# -- locating errors -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Located:
    """One pydantic error with its `loc` resolved against the document's data."""

    error: dict[str, Any]
    path: DataPath
    """The deepest node of the data that `loc` reaches."""
    union_at: DataPath | None
    """Where `loc` first passed through a union member, if it did."""
    branch: str
    on_key: bool


def locate(data: Any, error: dict[str, Any]) -> _Located:
    """Follow `loc` through the real data, dropping pydantic's own segments by exact match."""
    loc = tuple(error["loc"])
    path: list[str | int] = []
    node = data
    union_at: DataPath | None = None
    branch = ""
    on_key = False
    last = len(loc) - 1
    for position, segment in enumerate(loc):
        if _has_child(node, segment):
            node = node[segment]
            path.append(segment)
        elif segment == _KEY_SEGMENT:
            on_key = True
        elif position == last and error["type"] == "missing":
            pass  # the missing field itself; the error belongs to its parent mapping
        elif union_at is None:
            union_at = tuple(path)
            branch = str(segment)
    return _Located(error, tuple(path), union_at, branch, on_key)


def _has_child(node: Any, segment: Any) -> bool:
    """Whether `segment` is a real key (mapping) or index (list) of `node`."""
    if isinstance(node, dict):
        return isinstance(segment, str) and segment in node
    if isinstance(node, list):
        is_index = isinstance(segment, int) and not isinstance(segment, bool)
        return is_index and 0 <= segment < len(node)
    return False


def field_path(path: Iterable[str | int]) -> str:
    """`('spec', 'rules', 0, 'from', 1)` -> `spec.rules[0].from[1]`, as users write it."""
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif _PLAIN_KEY.match(segment):
            text += ("." if text else "") + segment
        else:
            text += f"[{segment!r}]"  # a label key like 'app.kubernetes.io/name'
    return text or "document"


def diagnostics_for(
    doc: Document, model: type[BaseModel], errors: Iterable[Any]
) -> list[Diagnostic]:
    """Turn one document's pydantic errors into findings; union members fold into one."""
    located = [locate(doc.data, dict(error)) for error in errors]
    out: list[Diagnostic] = []
    unions: dict[DataPath, list[_Located]] = {}
    for item in located:
        if item.union_at is None:
            out.append(_single(doc, model, item))
        else:
            unions.setdefault(item.union_at, []).append(item)
    for union_at, items in unions.items():
        out.extend(_union(doc, model, union_at, items))
    unique: dict[tuple[Span, str], Diagnostic] = {}
    for diag in out:
        unique.setdefault((diag.span, diag.message), diag)
    return list(unique.values())


def _union(
    doc: Document, model: type[BaseModel], at: DataPath, items: list[_Located]
) -> list[Diagnostic]:
    """Keep the members the value structurally matched; if none did, one finding lists them all."""
    deep = [i for i in items if i.path != at or i.error["type"] not in _MISMATCH]
    if deep:
        branches = {i.branch for i in deep}
        return [_single(doc, model, i) for i in items if i.branch in branches]
    value = _value_at(doc.data, at)
    forms = _forms(model, at, items)
    suggestion = _closest_literal(value, items)
    hint = f"did you mean {suggestion!r}?" if suggestion else "use one of the forms listed"
    return [
        Diagnostic(
            "MC103",
            doc.span(*at),
            f"{field_path(at)}: {_short(value)} is not valid here; expected {_or(forms)}",
            hint,
        )
    ]


def _single(doc: Document, model: type[BaseModel], item: _Located) -> Diagnostic:
    error = item.error
    kind = error["type"]
    loc = tuple(error["loc"])
    where = field_path(item.path)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        parent = item.path[:-1] if item.path and item.path[-1] == loc[-1] else item.path
        allowed = _aliases(model, parent)
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        message = f"{field_path(parent)}: unknown field {name!r}"
        if close:
            message += f"; did you mean {close[0]!r}?"
            hint = f"rename it to {close[0]!r}"
        elif allowed:
            hint = "allowed fields here: " + ", ".join(allowed)
        else:
            hint = "check the spelling; the schema in schemas/ lists the allowed fields"
        return Diagnostic("MC105", doc.key_span(*parent, name), message, hint)
    if kind == "missing":
        name = str(loc[-1])
        return Diagnostic(
            "MC106",
            doc.key_span(*item.path) if item.path else doc.span(),
            f"{where}: missing required field {name!r}",
            f"add '{name}:' to {where}",
        )
    if item.on_key and item.path:
        key = item.path[-1]
        message = f"{field_path(item.path[:-1])}: key {key!r}: {_message(error)}"
        return Diagnostic("MC103", doc.key_span(*item.path), message, _hint(error))
    meaning = _meaning_at(model, item.path) if kind == "string_type" else ""
    if meaning:  # e.g. `timeout: 2`: say a duration is expected, not just "a string"
        message = f"{where}: expected {meaning}, got {_short(error.get('input'))}"
        return Diagnostic("MC103", doc.span(*item.path), message, "write it with its unit")
    return Diagnostic("MC103", doc.span(*item.path), f"{where}: {_message(error)}", _hint(error))


# -- wording ---------------------------------------------------------------------------


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return f"{_short(value)} is not {_PATTERNS.get(pattern, f'of the form {pattern}')}"
    if kind == "literal_error":
        return f"{_short(value)} is not one of {ctx.get('expected')}"
    if kind in ("int_type", "int_parsing", "int_parsing_size", "int_from_float"):
        return f"expected a whole number, got {_short(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {_short(value)}"
    if kind == "finite_number":
        return f"expected a finite number, got {_short(value)}"
    if kind == "string_type":
        return f"expected a string, got {_short(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_short(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value), got {_short(value)}"
    if kind == "list_type":
        return f"expected a list, got {_short(value)}"
    msg = str(error.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return _lower_first(msg[len(prefix) :])
    msg = _lower_first(msg)
    if _is_scalar(value) and kind not in ("value_error", "assertion_error"):
        msg += f" (got {_short(value)})"
    return msg


def _hint(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind in _NUMERIC:
        return "write a number, e.g. 9080"
    if kind == "string_type":
        return "write a string (quote it if YAML reads it as a number or boolean)"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "write a mapping (key: value)"
    if kind == "list_type":
        return "write a list (- item, or [a, b])"
    if kind in ("bool_type", "bool_parsing"):
        return "write true or false"
    if kind == "literal_error":
        close = _closest_literal(error.get("input"), [error])
        if close:
            return f"did you mean {close!r}?"
    return "see the schema in schemas/ for the allowed values"


def _pattern_of(annotated: Any) -> str:
    """The regular expression inside an `Annotated[str, Field(pattern=...)]` alias."""
    for extra in get_args(annotated)[1:]:
        for item in getattr(extra, "metadata", []):
            pattern = getattr(item, "pattern", None)
            if isinstance(pattern, str):
                return pattern
    return ""


_PATTERNS = {
    DURATION_RE.pattern: "a duration with a unit ms, s, m, h or d (e.g. 500ms, 2s, 1m30s)",
    DNS_LABEL: "a valid name: lowercase letters, digits and '-' (e.g. 'reviews-v2')",
    _pattern_of(Ref): "a service reference: 'name' or 'namespace/name' in lowercase",
}
"""What the shared patterns mean, in words users can act on."""


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _short(value: Any) -> str:
    """A value as the user wrote it, kept short enough for one line."""
    if value is None:
        return "an empty value (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    digits = str(value).lstrip("+-") if isinstance(value, int | str) else ""
    if len(digits) > 30 and digits.isdigit():
        return f"a {len(digits)}-digit number"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _or(forms: list[str]) -> str:
    if len(forms) <= 1:
        return "".join(forms) or "another value"
    return ", ".join(forms[:-1]) + " or " + forms[-1]


def _forms(model: type[BaseModel], at: DataPath, items: list[_Located]) -> list[str]:
    """What the union at `at` accepts, from the model's annotation (or the errors)."""
    forms: list[str] = []
    for member in _types_at(model, at):
        form = _describe(member)
        if form and form not in forms:
            forms.append(form)
    if forms:
        return forms
    for item in items:
        form = _message(item.error).split(", got ")[0].removeprefix("expected ")
        if form not in forms:
            forms.append(form)
    return forms


def _describe(annotation: Any) -> str:
    if annotation is type(None):
        return ""
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        required = [f.alias or n for n, f in annotation.model_fields.items() if f.is_required()]
        keys = required or [f.alias or n for n, f in annotation.model_fields.items()]
        return "a mapping with " + ", ".join(keys)
    simple = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
    if annotation in simple:
        return simple[annotation]
    origin = get_origin(annotation)
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    return ""


def _closest_literal(value: Any, items: Iterable[_Located | dict[str, Any]]) -> str | None:
    if not isinstance(value, str):
        return None
    choices: list[str] = []
    for item in items:
        error = item.error if isinstance(item, _Located) else item
        if error["type"] == "literal_error":
            expected = str((error.get("ctx") or {}).get("expected", ""))
            choices.extend(part.strip(" '\"") for part in expected.replace(" or ", ", ").split(","))
    close = difflib.get_close_matches(value, [c for c in choices if c], n=1, cutoff=0.6)
    return close[0] if close else None


# -- the model's shape at a data path ------------------------------------------------------


def _value_at(data: Any, path: DataPath) -> Any:
    for segment in path:
        data = data[segment]
    return data


def _flatten(annotation: Any) -> list[Any]:
    """Unwrap Annotated[...] and unions into their member types."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _flatten(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in _flatten(arg)]
    return [annotation]


def _field(model: type[BaseModel], key: str) -> Any | None:
    for name, info in model.model_fields.items():
        if key in (info.alias, name):
            return info.annotation
    return None


def _types_at(model: type[BaseModel], path: DataPath) -> list[Any]:
    """The annotation members a value at `path` may take (several inside a union)."""
    current: list[Any] = [model]
    for segment in path:
        following: list[Any] = []
        for annotation in current:
            origin = get_origin(annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                if isinstance(segment, str) and (found := _field(annotation, segment)) is not None:
                    following.extend(_flatten(found))
            elif origin is list and isinstance(segment, int):
                following.extend(_flatten(get_args(annotation)[0]))
            elif origin is dict and isinstance(segment, str):
                following.extend(_flatten(get_args(annotation)[1]))
        current = following
    return current


def _meaning_at(model: type[BaseModel], path: DataPath) -> str:
    """What a field with one of the shared patterns (a duration...) means, or ""."""
    if not path or not isinstance(path[-1], str):
        return ""
    for parent in _types_at(model, path[:-1]):
        if isinstance(parent, type) and issubclass(parent, BaseModel):
            annotation = _field(parent, path[-1])
            for member in _annotated_members(annotation):
                meaning = _PATTERNS.get(_pattern_of(member), "")
                if meaning:
                    return meaning
    return ""


def _annotated_members(annotation: Any) -> list[Any]:
    """The `Annotated[...]` members of an annotation (itself, or inside a union)."""
    if get_origin(annotation) is Annotated:
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _annotated_members(arg)]
    return []


def _aliases(model: type[BaseModel], path: DataPath) -> list[str]:
    """The field names (as users write them) allowed in the mapping at `path`."""
    names: list[str] = []
    for annotation in _types_at(model, path):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for name, info in annotation.model_fields.items():
                alias = info.alias or name
                if alias not in names:
                    names.append(alias)
    return names
