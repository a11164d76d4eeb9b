"""Validate emitted objects against CustomResourceDefinitions, as a strict API server would.

The user's own CRD files (their Istio version) are the truth: each served version's
`openAPIV3Schema` is made strict (unknown fields are errors, like `kubectl apply
--validate=strict`: `additionalProperties: false` wherever `properties` is given and
unknown fields are not preserved), checked with `jsonschema`, and the CRDs'
`x-kubernetes-validations` CEL rules are evaluated (`cel.py`). Rules cel-python cannot
evaluate are reported as gaps, never counted as passed. Each problem keeps the object's
`meshc.io/source` annotation, so `report.py` can point back at the intent document.

Entry points: `load_crd_files(paths)` → `CrdSet`; `check_artifacts(artifacts, crds)` →
`CrdReport`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from compiler.artifacts import ArtifactKey, Artifacts
from compiler.provenance import source_of
from compiler.verify.cel import FieldPath, cel_sites, evaluate_cel


class CrdLoadError(Exception):
    """A CRD file that cannot be read or parsed; the message names the file and line."""


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

    key: ArtifactKey
    path: FieldPath
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


def check_object(key: ArtifactKey, obj: dict[str, Any], crds: CrdSet, report: CrdReport) -> None:
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    source = source_of(obj)
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


def _schema_problems(error: Any) -> list[tuple[FieldPath, str]]:
    """One problem per unknown field (at the field's own path, so it can be traced back to
    the intent line), else the schema's own message at the failing value."""
    path: FieldPath = tuple(error.absolute_path)
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
