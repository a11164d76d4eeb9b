"""Validate emitted objects against CustomResourceDefinitions, as a strict API server would.

The user's own CRD files (their Istio version) are the truth: each served version's
`openAPIV3Schema` is made strict (unknown fields are errors, like `kubectl apply
--validate=strict`: `additionalProperties: false` wherever `properties` is given and
unknown fields are not preserved), checked with `jsonschema`, and the CRDs'
`x-kubernetes-validations` CEL rules are evaluated with cel-python. Rules cel-python
cannot evaluate (e.g. Kubernetes CEL extensions it lacks) are reported as gaps, never
counted as passed. Findings point back at the intent document (and, where a field name
matches, the intent line) through the `meshc.io/source` annotation.

Entry points: `load_crd_files(paths)` → `CrdSet`; `check_artifacts(artifacts, crds)` →
`CrdReport`; `crd_diagnostics(report, compilation)` → located `Diagnostic`s (what
`meshc render --crds` prints); `check_compilation(compilation, crds)` does all of it for
an `ok` compilation (what `meshc lint --crds` can call).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from compiler.artifacts import Artifacts, ObjectKey, canonical_json
from compiler.diagnostics import Diagnostic, Span
from compiler.lower.istio.common import SOURCE

if TYPE_CHECKING:
    from compiler.api import Compilation
    from compiler.validate import Intent

CODE = "MC190"
"""Diagnostic code of an emitted object the user's CRDs reject."""

Path_ = tuple[str | int, ...]


class CrdLoadError(Exception):
    """A CRD file that cannot be read or parsed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class CelRule:
    """One `x-kubernetes-validations` rule and the message it reports when false."""

    rule: str
    message: str


@dataclass(slots=True)
class ServedVersion:
    group: str
    version: str
    kind: str
    origin: str
    schema: dict[str, Any]
    validator: Any


@dataclass(slots=True)
class CrdSet:
    """The served versions of every CRD read, keyed by (group, version, kind)."""

    versions: dict[tuple[str, str, str], ServedVersion] = field(default_factory=dict)
    kinds: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, crd: Any, *, origin: str) -> None:
        spec = crd.get("spec") if isinstance(crd, dict) else None
        names = spec.get("names") if isinstance(spec, dict) else None
        versions = spec.get("versions") if isinstance(spec, dict) else None
        if (
            not isinstance(spec, dict)
            or not isinstance(names, dict)
            or not isinstance(versions, list)
        ):
            raise CrdLoadError(
                f"{origin}: a CustomResourceDefinition without spec.names or spec.versions; "
                "pass CRD files as published (apiextensions.k8s.io/v1)"
            )
        group = str(spec.get("group", ""))
        kind = str(names.get("kind", ""))
        for version in versions:
            if not isinstance(version, dict) or not version.get("served", False):
                continue
            name = str(version.get("name", ""))
            raw = _openapi_schema(version, origin=f"{origin}: {kind} {name}")
            try:
                jsonschema.Draft7Validator.check_schema(raw)
                schema = strict_schema(raw)
            except jsonschema.SchemaError as exc:
                raise CrdLoadError(
                    f"{origin}: {kind} {name}: openAPIV3Schema is not a valid schema: "
                    f"{exc.message}; pass CRD files as published"
                ) from None
            validator = jsonschema.Draft7Validator(schema, format_checker=INTEGER_FORMATS)
            self.versions[(group, name, kind)] = ServedVersion(
                group, name, kind, origin, schema, validator
            )
            self.kinds.setdefault((group, kind), []).append(name)


def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


INTEGER_FORMATS = jsonschema.FormatChecker(formats=())
"""The integer formats the API server and Istio's proto conversion enforce: an int32 field
rejects 2147483648 although the schema states no maximum (other formats are not checked)."""
INTEGER_FORMATS.checks("int32")(_is_int32)
INTEGER_FORMATS.checks("int64")(_is_int64)


def _openapi_schema(version: dict[str, Any], *, origin: str) -> dict[str, Any]:
    holder = version.get("schema")
    if holder is None:
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema = holder.get("openAPIV3Schema") if isinstance(holder, dict) else None
    if not isinstance(schema, dict):
        raise CrdLoadError(
            f"{origin}: schema.openAPIV3Schema is not a mapping; pass CRD files as published"
        )
    return schema


def parse_crd_documents(documents: Iterable[Any], *, origin: str) -> CrdSet:
    crds = CrdSet()
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            crds.add(doc, origin=origin)
        elif isinstance(doc, dict) and doc.get("kind") == "List":
            items = doc.get("items")
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and item.get("kind") == "CustomResourceDefinition":
                    crds.add(item, origin=origin)
    return crds


def load_crd_files(paths: Sequence[Path]) -> CrdSet:
    """Read CRD YAML files; a missing or malformed file raises `CrdLoadError`."""
    loader = YAML(typ="safe")
    crds = CrdSet()
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CrdLoadError(
                f"{path}: cannot read CRD file: {exc}; pass a readable YAML file"
            ) from None
        try:
            documents = list(loader.load_all(text))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
            raise CrdLoadError(
                f"{where}: not valid YAML: {exc.problem}; fix the CRD file"
            ) from None
        except YAMLError as exc:
            raise CrdLoadError(f"{path}: not valid YAML: {exc}; fix the CRD file") from None
        found = parse_crd_documents(documents, origin=str(path))
        if not found.versions:
            raise CrdLoadError(
                f"{path}: no served CustomResourceDefinition found; pass Istio's CRD file"
            )
        crds.versions.update(found.versions)
        for key, names in found.kinds.items():
            crds.kinds.setdefault(key, []).extend(names)
    return crds


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy in which unknown fields are errors; the root also admits the object envelope."""
    out = copy.deepcopy(schema)
    _make_strict(out)
    props = out.setdefault("properties", {})
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props.setdefault("metadata", {"type": "object"})
    out["additionalProperties"] = False
    return out


def _make_strict(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _make_strict(item)
        return
    if not isinstance(node, dict):
        return
    if (
        "properties" in node
        and "additionalProperties" not in node
        and node.get("x-kubernetes-preserve-unknown-fields") is not True
    ):
        node["additionalProperties"] = False
    for key in ("properties", "patternProperties", "definitions"):
        for child in (node.get(key) or {}).values():
            _make_strict(child)
    for key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
        if key in node:
            _make_strict(node[key])


@dataclass(frozen=True, slots=True)
class CrdProblem:
    """One reason an emitted object would be rejected."""

    key: ObjectKey
    path: Path_
    message: str
    source: str

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path) or "(object)"
        return f"{self.key} {where}: {self.message}"


@dataclass(slots=True)
class CrdReport:
    problems: list[CrdProblem] = field(default_factory=list)
    checked: int = 0
    unchecked_kinds: set[str] = field(default_factory=set)
    cel_evaluated: int = 0
    cel_gaps: dict[str, str] = field(default_factory=dict)
    """CEL rule → why cel-python could not evaluate it (not counted as passed)."""


def check_artifacts(artifacts: Artifacts, crds: CrdSet) -> CrdReport:
    report = CrdReport()
    for key, obj in artifacts:
        check_object(key, obj, crds, report)
    report.problems.sort(key=lambda p: (p.key, [str(s) for s in p.path], p.message))
    return report


def check_object(key: ObjectKey, obj: dict[str, Any], crds: CrdSet, report: CrdReport) -> None:
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    source = str(((obj.get("metadata") or {}).get("annotations") or {}).get(SOURCE, ""))
    served = crds.versions.get((group, version, key.kind))
    if served is None:
        known = crds.kinds.get((group, key.kind))
        if known:
            report.problems.append(
                CrdProblem(
                    key,
                    ("apiVersion",),
                    f"{api_version} is not served by the given CRDs "
                    f"(served: {', '.join(sorted(known))}); "
                    "upgrade Istio or lower Mesh.spec.istioVersion",
                    source,
                )
            )
        else:
            report.unchecked_kinds.add(f"{key.kind} ({api_version})")
        return
    report.checked += 1
    for error in sorted(
        served.validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        report.problems.extend(
            CrdProblem(key, path, message, source) for path, message in _schema_problems(error)
        )
    for path, rule, value in cel_sites(served.schema, obj):
        outcome = evaluate_cel(rule.rule, value)
        if isinstance(outcome, str):
            report.cel_gaps.setdefault(rule.rule, outcome)
            continue
        report.cel_evaluated += 1
        if not outcome:
            report.problems.append(
                CrdProblem(key, path, f"{rule.message} (CEL rule: {rule.rule})", source)
            )


def _schema_problems(error: Any) -> list[tuple[Path_, str]]:
    """One problem per unknown field (at the field's own path, so it can be traced back to
    the intent line), else the schema's own message at the failing value."""
    path: Path_ = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties") or {})
        unknown = sorted(name for name in error.instance if name not in known)
        if unknown:
            return [
                (
                    (*path, name),
                    f"unknown field {name!r}: the CRD's schema does not have it "
                    "(this Istio version does not know it)",
                )
                for name in unknown
            ]
    return [(path, str(error.message))]


def cel_sites(
    schema: dict[str, Any], value: Any, path: Path_ = ()
) -> Iterator[tuple[Path_, CelRule, Any]]:
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


INTENT_FIELDS: dict[str, tuple[str, ...]] = {
    "consecutive5xxErrors": ("consecutive5xx",),
    "http1MaxPendingRequests": ("maxPendingRequests",),
    "http2MaxRequests": ("maxRequests",),
    "connectionPool": ("circuitBreaker",),
    "outlierDetection": ("circuitBreaker",),
    "httpHeaderName": ("header",),
    "httpCookie": ("cookie",),
    "useSourceIp": ("sourceIP",),
    "consistentHash": ("consistentHash", "loadBalancer"),
    "simple": ("loadBalancer",),
    "portLevelSettings": ("port",),
    "mirrorPercentage": ("mirror",),
    "weight": ("split", "steps"),
    "subset": ("version", "versions"),
    "subsets": ("versions",),
    "principals": ("from",),
    "namespaces": ("from",),
    "source": ("from",),
    "operation": ("to",),
    "when": ("headers",),
    "egress": ("calls",),
    "hosts": ("calls",),
    "workloadSelector": ("selector",),
    "matchLabels": ("selector",),
    "mtls": ("mtls",),
}
"""Istio field → the intent fields it is lowered from, where the names differ."""


def crd_diagnostics(report: CrdReport, compilation: Compilation) -> list[Diagnostic]:
    """Each problem as a Diagnostic located at the intent line that produced the field."""
    intents = {
        intent.ref: intent for result in compilation.files.values() for intent in result.intents
    }
    out = []
    for problem in report.problems:
        intent = intents.get(problem.source)
        if intent is None:
            span = Span(problem.source.split("#")[0] or "-")
        else:
            span = locate([intent, *related_intents(compilation, problem.key)], problem.path)
        where = ".".join(str(p) for p in problem.path) or "object"
        out.append(
            Diagnostic(
                CODE,
                span,
                f"{problem.key} {where}: {problem.message}",
                "set Mesh.spec.istioVersion to the Istio you run, "
                "or pass that version's CRDs with --crds",
            )
        )
    return sorted(out, key=Diagnostic.sort_key)


def related_intents(compilation: Compilation, key: ObjectKey) -> list[Intent[Any]]:
    """The other documents one object combines (a DestinationRule: its Service and the
    Resilience; a VirtualService: its Rollout and Resilience)."""
    from compiler.model.mesh import ServiceKey

    view = compilation.model.services.get(ServiceKey(key.namespace, key.name))
    if view is None:
        return []
    related: list[Intent[Any]] = [*view.rollouts, *view.resilience, *view.policies, view.intent]
    return sorted(related, key=lambda i: i.ref)


def locate(intents: list[Intent[Any]], path: Path_) -> Span:
    """The intent line behind an emitted field: the deepest field of `path` that one of the
    documents (the annotated source first) spells, directly or by its meshc name."""
    for segment in reversed(path):
        if not isinstance(segment, str):
            continue
        for name in (segment, *INTENT_FIELDS.get(segment, ())):
            for intent in intents:
                found = _find_key(intent.doc.data.get("spec"), name, ("spec",))
                if found is not None:
                    return intent.doc.key_span(*found)
    first = intents[0]
    return first.doc.span("spec") if "spec" in first.doc.data else first.doc.span()


def _find_key(node: Any, name: str, path: Path_) -> Path_ | None:
    if isinstance(node, dict):
        if name in node:
            return (*path, name)
        for key, child in node.items():
            found = _find_key(child, name, (*path, key))
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found = _find_key(child, name, (*path, index))
            if found is not None:
                return found
    return None


def check_compilation(
    compilation: Compilation, crds: CrdSet, *, target: str = "istio"
) -> tuple[list[Diagnostic], CrdReport]:
    """Lower and check one compilation: located findings plus the report (its CEL gaps and
    unchecked kinds are worth printing as notes). A compilation with errors has nothing to
    lower: no findings here (lint reports its errors already)."""
    from compiler.lower import lower

    if not compilation.ok:
        return [], CrdReport()
    report = check_artifacts(lower(compilation, target=target), crds)
    return crd_diagnostics(report, compilation), report
