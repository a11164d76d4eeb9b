"""Bounded quantities: a model field's type says what it holds, a target says what it accepts.

A field typed `Int32Count`, `Duration`, `Percentage`... carries a `Bound` in its
`Annotated` metadata (pydantic ignores it: validation and JSON Schema are unchanged). The
range rules (`compiler.lint.bounds`) walk every validated document with `bounded_values`
and compare each value with the limits of every registered target, so a new field gets
the checks by being given one of these types, and no rule lists fields.

What a target accepts (Go's duration range, Istio's int32 fields, zero read as unset) is
not known here: each target registers its `TargetLimits` with `register_target`. This
module imports no target, so the kinds stay independent of the backends.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from compiler.kinds.common import Duration as DurationSyntax

IntWidth = Literal["int32", "uint32"]
"""The integer types target APIs use for counts."""


class Bound:
    """Field metadata the range rules look for (the subclasses say which check applies)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class DurationBound(Bound):
    """A duration the target's proxies must represent (its minimum and maximum apply)."""

    zero_allowed: bool = False
    """0 means something here (a session cookie), so only a positive value below the
    target's minimum is wrong."""


@dataclass(frozen=True, slots=True)
class PercentBound(Bound):
    """A share of 0-100 (the range is the quantity's, whatever the target)."""


@dataclass(frozen=True, slots=True)
class CountBound(Bound):
    """A number of things: never negative."""

    zero_is_limit: bool = False
    """0 would mean "none allowed" to its author; a target that reads 0 as unset turns it
    into "no limit", so there the smallest meaningful value is 1."""


@dataclass(frozen=True, slots=True)
class WidthBound(Bound):
    """The target field an integer lowers to is a `width` integer."""

    width: IntWidth


Duration = Annotated[DurationSyntax, DurationBound()]
"""A duration a proxy applies (a timeout, an interval): at least the target's minimum,
at most its maximum. (Plain `compiler.kinds.common.Duration` is for durations no proxy
reads, such as the mesh CA's certificate lifetimes.)"""

DurationOrZero = Annotated[DurationSyntax, DurationBound(zero_allowed=True)]
"""As `Duration`, where 0 has a meaning of its own (a cookie TTL of 0: a session cookie)."""

Percentage = Annotated[float, PercentBound()]
"""A percentage, 0-100."""

Int32Percentage = Annotated[int, PercentBound(), WidthBound("int32")]
"""A whole percentage, 0-100, that lowers to an int32 field."""

Int32Count = Annotated[int, CountBound(), WidthBound("int32")]
"""A count, 0 or more, that lowers to an int32 field."""

Int32Limit = Annotated[int, CountBound(zero_is_limit=True), WidthBound("int32")]
"""A limit (1 or more where the target reads 0 as unset) that lowers to an int32 field."""

UInt32Count = Annotated[int, CountBound(), WidthBound("uint32")]
"""A count, 0 or more, that lowers to a uint32 field."""


@dataclass(frozen=True, slots=True)
class TargetLimits:
    """What one target accepts for each bounded type, and how messages name it."""

    name: str
    """The target as messages name it ("Istio")."""
    int_max: Mapping[IntWidth, int]
    duration_min_ms: float
    duration_max_ms: float
    duration_max_source: str
    """Why durations stop at `duration_max_ms`, as in "longer than <this> holds"."""
    zero_limit_unset: bool
    """The target reads 0 in a limit as "unset" (proto3 scalars), i.e. its default."""


_TARGETS: dict[str, TargetLimits] = {}


def register_target(limits: TargetLimits) -> TargetLimits:
    """Make `limits` apply to every bounded field (idempotent for the same limits; a
    second, different table under one name is a programming error)."""
    known = _TARGETS.setdefault(limits.name, limits)
    if known != limits:
        raise RuntimeError(f"target {limits.name} registered twice with different limits")
    return limits


def registered_targets() -> tuple[TargetLimits, ...]:
    """Every registered target, in registration order."""
    return tuple(_TARGETS.values())


Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class BoundedValue:
    """One value of a bounded field, at the path (aliases, list indices) the user wrote."""

    path: Path
    value: Any
    bound: Bound


def bounded_values(model: BaseModel, path: Path = ()) -> Iterator[BoundedValue]:
    """Every bounded value the user set in `model`, depth first in field order.

    Fields left at their default are skipped: a default is meshc's choice, not a value
    written in the file (and has no span to point at)."""
    if not _may_hold_bounds(type(model)):
        return
    for name, key, annotation, bounds in _fields(type(model)):
        if name in model.model_fields_set:
            yield from _values(getattr(model, name), annotation, bounds, (*path, key))


def _values(
    value: Any, annotation: Any, bounds: tuple[Bound, ...], path: Path
) -> Iterator[BoundedValue]:
    if value is None:
        return
    if isinstance(value, BaseModel):
        yield from bounded_values(value, path)
    elif isinstance(value, list | tuple):
        item = _item_annotation(annotation, list)
        for index, element in enumerate(value):
            yield from _values(element, item, (), (*path, index))
    elif isinstance(value, dict):
        item = _item_annotation(annotation, dict)
        for key, element in value.items():
            yield from _values(element, item, (), (*path, key))
    else:
        kind: Any = type(value)
        for bound in (*bounds, *_bounds_of(annotation, kind)):
            yield BoundedValue(path, value, bound)


@functools.cache
def _may_hold_bounds(model: type[BaseModel]) -> bool:
    """Whether any field of `model`, or of a model nested in it, is bounded (most kinds'
    documents have none: their walk is skipped, which is most of a lint's documents)."""
    return any(
        bounds or _annotation_bounded(annotation, {model})
        for _, _, annotation, bounds in _fields(model)
    )


def _annotation_bounded(annotation: Any, seen: set[type]) -> bool:
    if get_origin(annotation) is Annotated and any(
        isinstance(m, Bound) for m in get_args(annotation)[1:]
    ):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(
            bounds or _annotation_bounded(inner, seen)
            for _, _, inner, bounds in _fields(annotation)
        )
    return any(_annotation_bounded(arg, seen) for arg in get_args(annotation))


@functools.cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, str, Any, tuple[Bound, ...]], ...]:
    """(attribute, key as written, annotation, bounds of the field itself) per field; for
    a field declared `x: Int32Count`, pydantic keeps the bounds in `FieldInfo.metadata`."""
    return tuple(
        (name, info.alias or name, info.annotation, _metadata_bounds(info))
        for name, info in model.model_fields.items()
    )


def _metadata_bounds(info: FieldInfo) -> tuple[Bound, ...]:
    return tuple(m for m in info.metadata if isinstance(m, Bound))


def _arms(annotation: Any) -> tuple[Any, ...]:
    """The members of a union (`X | None`), or the annotation itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


@functools.cache
def _bounds_of(annotation: Any, kind: Any) -> tuple[Bound, ...]:
    """The bounds of the `Annotated` union member that a value of type `kind` is an
    instance of (memoised: annotations are fixed, and the walk runs per document)."""
    found: list[Bound] = []
    for arm in _arms(annotation):
        if get_origin(arm) is not Annotated:
            continue
        base, *metadata = get_args(arm)
        if isinstance(base, type) and issubclass(kind, base):
            found.extend(m for m in metadata if isinstance(m, Bound))
    return tuple(found)


@functools.cache
def _item_annotation(annotation: Any, container: type) -> Any:
    """The element (list) or value (dict) annotation of the container member of a union."""
    for arm in _arms(annotation):
        if get_origin(arm) is Annotated:
            arm = get_args(arm)[0]
        if get_origin(arm) is container and get_args(arm):
            return get_args(arm)[-1]
    return Any
