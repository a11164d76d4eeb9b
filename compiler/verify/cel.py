"""CEL rules of a CRD schema (`x-kubernetes-validations`): where each applies, and its
outcome on a value, evaluated with cel-python.

A rule cel-python cannot compile or evaluate (e.g. a Kubernetes CEL extension it lacks)
has its reason returned instead of an outcome: the caller reports it as a gap, never as
passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from compiler.artifacts import canonical_json

FieldPath = tuple[str | int, ...]
"""A field's location in an object: mapping keys and list indexes, from the root."""


@dataclass(frozen=True, slots=True)
class CelRule:
    """One `x-kubernetes-validations` rule and the message it reports when false."""

    rule: str
    message: str


def cel_sites(
    schema: dict[str, Any], value: Any, path: FieldPath = ()
) -> Iterator[tuple[FieldPath, CelRule, Any]]:
    """Every (location, rule, value) where a CEL rule applies to a present value."""
    rules = schema.get("x-kubernetes-validations")
    for raw in rules if isinstance(rules, list) else []:
        if not isinstance(raw, dict):
            continue
        text = str(raw.get("rule", ""))
        if "oldSelf" in text:
            continue  # transition rules need a previous object; creation has none
        yield path, CelRule(text, str(raw.get("message") or f"failed rule: {text}")), value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, child in value.items():
            sub = props.get(name)
            if sub is None and isinstance(extra, dict):
                sub = extra
            if isinstance(sub, dict):
                yield from cel_sites(sub, child, (*path, name))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, child in enumerate(value):
            yield from cel_sites(schema["items"], child, (*path, index))


_PROGRAMS: dict[str, Any] = {}
_RESULTS: dict[tuple[str, str], bool | str] = {}
"""CEL rules are pure: (rule, value) → outcome is memoised (cel-python interprets slowly)."""


def evaluate_cel(rule: str, value: Any) -> bool | str:
    """True/False, or the reason cel-python could not evaluate the rule."""
    memo = (rule, canonical_json(value))
    if memo not in _RESULTS:
        if len(_RESULTS) > 100_000:
            _RESULTS.clear()
        _RESULTS[memo] = _evaluate_cel(rule, value)
    return _RESULTS[memo]


def _evaluate_cel(rule: str, value: Any) -> bool | str:
    import celpy
    import celpy.evaluation

    program = _PROGRAMS.get(rule)
    if program is None:
        env = celpy.Environment()
        try:
            program = env.program(env.compile(rule))
        except Exception as exc:  # cel-python's parser raises several types
            return f"cel-python cannot compile it: {_brief(exc)}"
        _PROGRAMS[rule] = program
    try:
        result = program.evaluate({"self": celpy.adapter.json_to_cel(value)})
    except Exception as exc:  # an unsupported function or overload
        return f"cel-python cannot evaluate it: {_brief(exc)}"
    if isinstance(result, celpy.evaluation.CELEvalError):
        return f"cel-python cannot evaluate it: {_brief(result)}"
    if isinstance(result, (celpy.celtypes.BoolType, bool)):
        return bool(result)
    return f"cel-python returned {type(result).__name__} ({result!r}), not a boolean"


def _brief(exc: BaseException) -> str:
    """cel-python's errors embed its whole activation; keep the first line, shortened."""
    args = exc.args
    text = str(args[0]) if args else str(exc)
    first = text.splitlines()[0].split(" (in activation")[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {first[:160]}"
