"""JSON Schemas (draft 2020-12) for every intent kind, generated from the pydantic models.

The checked-in `schemas/` directory is this module's output (`meshc schema --out schemas`)
and a test fails when it is stale, so the schema editors see never drifts from the
models the compiler validates with. `all.schema.json` is self-contained (every kind's
definitions under `$defs`, chosen by `kind` with if/then) so that yaml-language-server
can validate any meshc document from a local file without fetching anything.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from compiler.kinds import KINDS
from compiler.report.formats import JSON_REPORT_SCHEMA

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_URI = "https://raw.githubusercontent.com/meshc/meshc/main/schemas/"
API_VERSION = "meshc/v1"
ALL_FILE = "all.schema.json"
LINT_REPORT_FILE = "lint-report.schema.json"
REGENERATE = "meshc schema --out schemas"
TIMESTAMP_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$"
)
"""A date, or a date and time with an optional offset: what the `Timestamp` type parses."""


class IntentJsonSchema(GenerateJsonSchema):
    """pydantic's generator, adjusted to what the loader really accepts."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        # Titles derived from field names ("Apiversion") only add noise to editor hovers.
        return False

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        # Every time field is a `Timestamp`: a plain date (midnight UTC) or an RFC 3339 time.
        return {
            "type": "string",
            "pattern": TIMESTAMP_PATTERN,
            "examples": ["2026-12-31", "2026-12-31T18:00:00Z"],
        }


def kind_file(kind: str) -> str:
    """`AccessPolicy` -> `access-policy.schema.json`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower() + ".schema.json"


def kind_description(kind: str, model: type[BaseModel]) -> str:
    """The first line of the kind's model module docstring (`Service: a workload's ...`)."""
    module = sys.modules.get(model.__module__)
    doc = (module.__doc__ if module else None) or model.__doc__ or f"A meshc {kind} document."
    return doc.strip().splitlines()[0]


def kind_schema(kind: str, model: type[BaseModel]) -> dict[str, Any]:
    """One kind's schema, with its own `$defs` (usable on its own)."""
    body = model.model_json_schema(by_alias=True, schema_generator=IntentJsonSchema)
    body.pop("title", None)
    body.pop("description", None)
    return {
        "$schema": DIALECT,
        "$id": BASE_URI + kind_file(kind),
        "title": f"meshc {kind}",
        "description": kind_description(kind, model),
        **body,
    }


def all_kinds_schema(kinds: Mapping[str, type[BaseModel]] = KINDS) -> dict[str, Any]:
    """Any meshc document: `apiVersion`/`kind` first, then the chosen kind's schema."""
    names = list(kinds)
    refs, shared = models_json_schema(
        [(kinds[k], "validation") for k in names],
        by_alias=True,
        schema_generator=IntentJsonSchema,
    )
    branches = [
        {
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": refs[(kinds[kind], "validation")],
        }
        for kind in names
    ]
    return {
        "$schema": DIALECT,
        "$id": BASE_URI + ALL_FILE,
        "title": "meshc intent document",
        "description": (
            "Any meshc document (" + ", ".join(names) + "). Editors: put "
            "`# yaml-language-server: $schema=<path to schemas>/all.schema.json` at the top "
            "of a policy file."
        ),
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"enum": names},
        },
        "allOf": branches,
        "$defs": shared.get("$defs", {}),
    }


def render_schema(schema: Mapping[str, Any]) -> str:
    """The bytes written to disk: stable key order from the models, two-space indent."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def lint_report_schema() -> dict[str, Any]:
    """The contract of `meshc lint --format json`, for consumers of the report."""
    return {"$schema": DIALECT, "$id": BASE_URI + LINT_REPORT_FILE, **JSON_REPORT_SCHEMA}


def schema_files() -> dict[str, str]:
    """file name -> content for the whole `schemas/` directory."""
    files = {kind_file(k): render_schema(kind_schema(k, m)) for k, m in KINDS.items()}
    files[ALL_FILE] = render_schema(all_kinds_schema())
    files[LINT_REPORT_FILE] = render_schema(lint_report_schema())
    return dict(sorted(files.items()))
