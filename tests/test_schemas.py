"""The checked-in JSON Schemas are current, and they accept exactly what meshc accepts."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from compiler.cli import cli
from compiler.load.yamlnodes import parse_source
from compiler.schema import REGENERATE, schema_files
from tests.helpers import REPO, run_cli

SCHEMAS = REPO / "schemas"


def _all_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / "all.schema.json").read_text())
    return loaded


@functools.cache
def _validator(name: str = "all.schema.json") -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _documents(path: Path) -> list[Any]:
    parsed = parse_source(path.name, path.read_bytes())
    assert parsed.problems == [], parsed.problems
    return [doc.data for doc in parsed.documents if doc.data is not None]


def _errors(document: Any, name: str = "all.schema.json") -> list[str]:
    return [e.message for e in _validator(name).iter_errors(document)]


def test_checked_in_schemas_are_current(tmp_path: Path) -> None:
    """Regenerating through the CLI into a temp dir gives the same bytes as schemas/."""
    result = run_cli("meshc", "schema", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    fresh = {p.name: p.read_bytes() for p in sorted(tmp_path.iterdir())}
    checked_in = {p.name: p.read_bytes() for p in sorted(SCHEMAS.glob("*.json"))}
    stale = sorted(n for n in fresh.keys() | checked_in.keys() if fresh.get(n) != checked_in.get(n))
    assert not stale, f"schemas/ is stale ({', '.join(stale)}); regenerate with: {REGENERATE}"
    assert set(fresh) == set(schema_files())


def test_schema_without_out_prints_the_all_kinds_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == _all_schema()


def test_schema_out_unwritable_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["schema", "--out", str(blocker / "sub")])
    assert result.exit_code == 2
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_every_schema_is_a_valid_draft_2020_12_schema_with_id_and_title() -> None:
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith("/schemas/" + path.name)
        assert schema["title"].startswith("meshc") and schema["description"]


@pytest.mark.parametrize("path", sorted((REPO / "policies").glob("*.yaml")), ids=lambda p: p.name)
def test_example_policies_validate_against_all_schema(path: Path) -> None:
    assert path.read_text().startswith("# yaml-language-server: $schema=../schemas/all.schema.json")
    documents = _documents(path)
    assert documents
    for document in documents:
        assert _errors(document) == [], f"{path.name}: {document.get('kind')}"


def test_unknown_field_is_rejected() -> None:
    document: dict[str, Any] = {
        "apiVersion": "meshc/v1",
        "kind": "Service",
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {"ports": [{"name": "http", "port": 9080}], "cals": ["ratings"]},
    }
    assert _errors(document) == ["Additional properties are not allowed ('cals' was unexpected)"]
    assert _errors(document, "service.schema.json") == _errors(document)
    del document["spec"]["cals"]
    assert _errors(document) == []


def test_kind_selects_the_right_schema() -> None:
    rollout_fields_on_a_service = {
        "apiVersion": "meshc/v1",
        "kind": "Service",
        "metadata": {"name": "reviews"},
        "spec": {"ports": [{"name": "http", "port": 9080}], "stable": "v1"},
    }
    assert any("'stable' was unexpected" in e for e in _errors(rollout_fields_on_a_service))
    assert any(
        "is not one of" in e for e in _errors({**rollout_fields_on_a_service, "kind": "Deployment"})
    )
    assert any(
        "'meshc/v1' was expected" in e
        for e in _errors({**rollout_fields_on_a_service, "apiVersion": "v1"})
    )


def test_timestamps_accept_a_date_or_a_time() -> None:
    mesh: dict[str, Any] = {
        "apiVersion": "meshc/v1",
        "kind": "Mesh",
        "metadata": {"name": "m"},
        "spec": {"mtls": {"mode": "permissive", "until": "2026-12-31"}},
    }
    assert _errors(mesh) == []
    mesh["spec"]["mtls"]["until"] = "2026-12-31T18:00:00Z"
    assert _errors(mesh) == []
    mesh["spec"]["mtls"]["until"] = "next tuesday"
    assert _errors(mesh) != []
