"""Validation messages: user-style paths, one finding per union, suggestions for typos."""

from __future__ import annotations

from compiler.diagnostics import Diagnostic
from compiler.validate import field_path
from tests.helpers import compile_files

HEAD = "apiVersion: meshc/v1\nmetadata: {name: r}\n"


def errors_in(text: str) -> list[Diagnostic]:
    compilation = compile_files({"a.yaml": HEAD + text})
    return [
        d for d in compilation.diagnostics if d.span.file == "a.yaml" and d.code.startswith("MC1")
    ]


def summary(diags: list[Diagnostic]) -> list[tuple[str, str, str]]:
    return [(f"{d.span.line}:{d.span.col}", d.code, d.message) for d in diags]


def test_field_paths_read_like_yaml() -> None:
    assert field_path(("spec", "rules", 0, "from", 1, "service")) == "spec.rules[0].from[1].service"
    assert field_path(()) == "document"
    assert field_path(("metadata", "labels", "app.kubernetes.io/name")) == (
        "metadata.labels['app.kubernetes.io/name']"
    )


def test_a_value_matching_no_union_member_is_one_finding() -> None:
    found = errors_in("kind: Resilience\nspec:\n  service: ratings\n  loadBalancer: leastrequest\n")
    assert summary(found) == [
        (
            "6:17",
            "MC103",
            "spec.loadBalancer: 'leastrequest' is not valid here; expected one of "
            "'round-robin', 'least-request', 'random' or a mapping with consistentHash",
        )
    ]
    assert found[0].hint == "did you mean 'least-request'?"


def test_a_mapping_reports_only_the_member_it_resembles() -> None:
    found = errors_in(
        "kind: Resilience\nspec:\n  service: ratings\n"
        "  loadBalancer: {consistentHash: {header: 1}}\n"
    )
    assert summary(found) == [
        ("6:43", "MC103", "spec.loadBalancer.consistentHash.header: expected a string, got 1")
    ]


def test_a_missing_field_inside_a_union_member_points_at_its_mapping() -> None:
    found = errors_in("kind: Resilience\nspec:\n  service: ratings\n  loadBalancer: {}\n")
    assert summary(found) == [
        ("6:3", "MC106", "spec.loadBalancer: missing required field 'consistentHash'")
    ]


def test_scalar_unions_list_their_forms() -> None:
    found = errors_in(
        "kind: AccessPolicy\nspec:\n  service: ratings\n"
        "  rules: [{from: [{service: a}], to: {ports: [1.5]}}]\n"
    )
    assert summary(found) == [
        (
            "6:47",
            "MC103",
            "spec.rules[0].to.ports[0]: 1.5 is not valid here; expected a whole number or a string",
        )
    ]


def test_unknown_field_suggests_the_closest_alias() -> None:
    found = errors_in(
        "kind: Resilience\nspec:\n  service: ratings\n  circuitBreaker: {consecutive5xxErrors: 3}\n"
    )
    assert summary(found) == [
        (
            "6:20",
            "MC105",
            "spec.circuitBreaker: unknown field 'consecutive5xxErrors'; "
            "did you mean 'consecutive5xx'?",
        )
    ]
    assert found[0].hint == "rename it to 'consecutive5xx'"


def test_unknown_field_without_a_close_match_lists_the_allowed_ones() -> None:
    found = errors_in("kind: Resilience\nspec:\n  service: ratings\n  zzzz: 1\n")
    assert summary(found) == [("6:3", "MC105", "spec: unknown field 'zzzz'")]
    assert found[0].hint.startswith("allowed fields here: service, port, timeout, retries")


def test_a_bad_mapping_key_points_at_the_key() -> None:
    found = errors_in(
        "kind: Service\nspec:\n  ports: [{name: http, port: 9080}]\n"
        "  versions: {v1: {labels: {'': x}}}\n"
    )
    assert summary(found) == [
        (
            "6:28",
            "MC103",
            "spec.versions.v1.labels: key '': string should have at least 1 character (got '')",
        )
    ]


def test_missing_field_names_the_field_and_its_parent() -> None:
    found = errors_in("kind: AccessPolicy\nspec:\n  rules: [{from: [{service: a}]}]\n")
    assert summary(found) == [("4:1", "MC106", "spec: missing required field 'service'")]
    assert found[0].hint == "add 'service:' to spec"
