"""`compiler.verify` on small, self-contained CRDs: strictness, CEL rules, served versions,
located findings, and unreadable CRD files. (Istio's real CRDs:
tests/lower/test_crd_reference.py.)"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from compiler.artifacts import Artifacts
from compiler.lower import lower
from compiler.verify.cel import evaluate_cel
from compiler.verify.crds import (
    CrdLoadError,
    check_artifacts,
    load_crd_files,
    parse_crd_documents,
    strict_schema,
)
from compiler.verify.findings import crd_diagnostics
from tests.helpers import compile_files

RESILIENCE = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: ratings, namespace: app}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: meshc/v1
kind: Resilience
metadata: {name: ratings, namespace: app}
spec:
  service: ratings
  timeout: 2s
  retries: {attempts: 3, perTryTimeout: 500ms}
"""


def virtual_service_crd(
    *,
    served: tuple[str, ...] = ("v1",),
    retries_fields: tuple[str, ...] = ("attempts", "perTryTimeout"),
) -> dict[str, Any]:
    """A cut-down VirtualService CRD in the shape Istio publishes."""
    duration = {
        "type": "string",
        "x-kubernetes-validations": [
            {
                "rule": "duration(self) >= duration('1ms')",
                "message": "must be a valid duration greater than 1ms",
            }
        ],
    }
    retries = {
        "type": "object",
        "properties": {
            name: ({"type": "integer"} if name == "attempts" else duration)
            for name in retries_fields
        },
    }
    route = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "timeout": duration,
            "retries": retries,
            "route": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "destination": {
                            "type": "object",
                            "properties": {
                                "host": {"type": "string"},
                                "subset": {"type": "string"},
                            },
                            "required": ["host"],
                        },
                        "weight": {"type": "integer"},
                    },
                },
            },
        },
    }
    spec = {
        "type": "object",
        "properties": {
            "hosts": {"type": "array", "items": {"type": "string"}},
            "http": {"type": "array", "items": route},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "virtualservices.networking.istio.io"},
        "spec": {
            "group": "networking.istio.io",
            "names": {"kind": "VirtualService"},
            "versions": [
                {
                    "name": name,
                    "served": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": spec,
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
                for name in served
            ],
        },
    }


def rendered() -> tuple[Any, Artifacts]:
    compilation = compile_files({"r.yaml": RESILIENCE})
    return compilation, lower(compilation)


def test_matching_crds_pass_and_other_kinds_are_listed_as_unchecked() -> None:
    _, artifacts = rendered()
    report = check_artifacts(
        artifacts, parse_crd_documents([virtual_service_crd()], origin="crds.yaml")
    )
    assert report.problems == []
    assert report.checked == 1
    assert report.cel_evaluated == 2, "timeout and perTryTimeout each checked by the duration rule"
    assert "DestinationRule (networking.istio.io/v1)" in report.unchecked_kinds


def test_a_field_the_users_istio_does_not_know_is_an_error_at_the_intent_line() -> None:
    compilation, artifacts = rendered()
    old = parse_crd_documents(
        [virtual_service_crd(retries_fields=("attempts",))], origin="crds.yaml"
    )
    report = check_artifacts(artifacts, old)
    assert [str(p) for p in report.problems] == [
        "VirtualService.networking.istio.io/app/ratings spec.http.0.retries.perTryTimeout: "
        "unknown field 'perTryTimeout': the CRD's schema does not have it "
        "(this Istio version does not know it)"
    ]
    (diag,) = crd_diagnostics(report, compilation)
    assert diag.code == "MC190"
    # the finding points at the Resilience document's `perTryTimeout` key (r.yaml line 13)
    assert (diag.span.file, diag.span.line, diag.span.col) == ("r.yaml", 13, 26)
    assert "perTryTimeout" in diag.message and "istioVersion" in diag.hint


def test_a_cel_rule_that_fails_is_reported_with_its_message() -> None:
    compilation, artifacts = rendered()
    broken = copy.deepcopy(dict(artifacts.objects))
    vs_key = next(k for k in broken if k.kind == "VirtualService")
    broken[vs_key]["spec"]["http"][0]["timeout"] = "0.5ms"
    report = check_artifacts(
        Artifacts(broken), parse_crd_documents([virtual_service_crd()], origin="c")
    )
    assert [p.message for p in report.problems] == [
        "must be a valid duration greater than 1ms (CEL rule: duration(self) >= duration('1ms'))"
    ]
    assert report.problems[0].path == ("spec", "http", 0, "timeout")
    (diag,) = crd_diagnostics(report, compilation)
    assert (diag.span.file, diag.span.line) == ("r.yaml", 12), "the Resilience `timeout` line"


def test_an_api_version_the_crds_do_not_serve_is_an_error() -> None:
    _, artifacts = rendered()
    old = parse_crd_documents([virtual_service_crd(served=("v1alpha3", "v1beta1"))], origin="c")
    report = check_artifacts(artifacts, old)
    assert [p.message for p in report.problems] == [
        "networking.istio.io/v1 is not served by the given CRDs (served: v1alpha3, v1beta1); "
        "upgrade Istio or lower Mesh.spec.istioVersion"
    ]


def test_strict_schema_adds_additional_properties_false_except_where_unknown_fields_are_kept() -> (
    None
):
    schema = strict_schema(
        {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {"a": {"type": "string"}}},
                "status": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"b": {}},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    )
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert props["spec"]["additionalProperties"] is False
    assert "additionalProperties" not in props["status"]
    assert props["labels"]["additionalProperties"] == {"type": "string"}
    assert set(props) >= {"apiVersion", "kind", "metadata"}


def test_cel_functions_cel_python_lacks_are_gaps_not_passes() -> None:
    outcome = evaluate_cel("isIP(self)", "10.0.0.1")
    assert isinstance(outcome, str) and "cel-python cannot" in outcome
    assert evaluate_cel("self.size() > 1", "ab") is True
    assert evaluate_cel("self.size() > 1", "a") is False


def test_crd_files_that_cannot_be_used_are_located_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: CustomResourceDefinition\nspec: [\n")
    with pytest.raises(CrdLoadError, match=r"broken\.yaml:3:1: not valid YAML"):
        load_crd_files([broken])
    empty = tmp_path / "empty.yaml"
    empty.write_text("kind: ConfigMap\n")
    with pytest.raises(CrdLoadError, match="no served CustomResourceDefinition found"):
        load_crd_files([empty])
    with pytest.raises(CrdLoadError, match="cannot read CRD file"):
        load_crd_files([tmp_path / "missing.yaml"])
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CrdLoadError, match="cannot read CRD file"):
        load_crd_files([binary])


def test_a_destination_rule_field_is_traced_to_the_resilience_that_set_it(tmp_path: Path) -> None:
    """The DestinationRule's annotation names the Service; its outlier detection came from
    the Resilience, and the finding says so by pointing at `consecutive5xx` there."""
    compilation = compile_files(
        {
            "svc.yaml": RESILIENCE.split("---")[0],
            "res.yaml": "apiVersion: meshc/v1\nkind: Resilience\n"
            "metadata: {name: r, namespace: app}\nspec:\n  service: ratings\n"
            "  circuitBreaker: {consecutive5xx: 5}\n",
        }
    )
    artifacts = lower(compilation)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {
            "group": "networking.istio.io",
            "names": {"kind": "DestinationRule"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "host": {"type": "string"},
                                        "trafficPolicy": {
                                            "type": "object",
                                            "properties": {
                                                "tls": {
                                                    "type": "object",
                                                    "properties": {"mode": {"type": "string"}},
                                                },
                                                "outlierDetection": {
                                                    "type": "object",
                                                    "properties": {
                                                        "consecutiveErrors": {"type": "integer"}
                                                    },
                                                },
                                            },
                                        },
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    report = check_artifacts(artifacts, parse_crd_documents([crd], origin="old.yaml"))
    assert [p.path for p in report.problems] == [
        ("spec", "trafficPolicy", "outlierDetection", "consecutive5xxErrors")
    ]
    (diag,) = crd_diagnostics(report, compilation)
    assert (diag.span.file, diag.span.line, diag.span.col) == ("res.yaml", 6, 20)
    assert "unknown field 'consecutive5xxErrors'" in diag.message


@pytest.mark.parametrize(
    ("crd", "message"),
    [
        ({"spec": {"names": 5}}, "without spec.names or spec.versions"),
        ({"spec": {"names": {"kind": "X"}, "versions": 3}}, "without spec.names or spec.versions"),
        (
            {
                "spec": {
                    "names": {"kind": "X"},
                    "versions": [
                        {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {"type": 5}}}
                    ],
                }
            },
            "X v1: openAPIV3Schema is not a valid schema",
        ),
        (
            {
                "spec": {
                    "names": {"kind": "X"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "schema": {"openAPIV3Schema": {"properties": []}},
                        }
                    ],
                }
            },
            "X v1: openAPIV3Schema is not a valid schema",
        ),
        (
            {
                "spec": {
                    "names": {"kind": "X"},
                    "versions": [{"name": "v1", "served": True, "schema": "text"}],
                }
            },
            "X v1: schema.openAPIV3Schema is not a mapping",
        ),
    ],
)
def test_malformed_crds_are_load_errors_not_crashes(crd: dict[str, Any], message: str) -> None:
    with pytest.raises(CrdLoadError, match=message):
        parse_crd_documents([{"kind": "CustomResourceDefinition", **crd}], origin="f.yaml")


def test_odd_but_loadable_crd_parts_are_tolerated() -> None:
    crds = parse_crd_documents(
        [
            {"kind": "List", "items": 5},
            {
                "kind": "CustomResourceDefinition",
                "spec": {
                    "group": "g",
                    "names": {"kind": "X"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "x-kubernetes-validations": [7, {"rule": 5}],
                                }
                            },
                        }
                    ],
                },
            },
        ],
        origin="f.yaml",
    )
    assert list(crds.versions) == [("g", "v1", "X")]
    report = check_artifacts(
        Artifacts.of_kubernetes([{"apiVersion": "g/v1", "kind": "X", "metadata": {"name": "a"}}]),
        crds,
    )
    assert report.problems == []
    assert report.cel_gaps == {"5": "cel-python returned IntType (IntType(5)), not a boolean"}


def test_check_compilation_is_the_one_call_lint_needs() -> None:
    from compiler.cli.lint_crds import check_compilation

    compilation = compile_files({"r.yaml": RESILIENCE})
    old = parse_crd_documents([virtual_service_crd(retries_fields=("attempts",))], origin="c")
    findings, report = check_compilation(compilation, old)
    assert [(d.code, d.span.file, d.span.line) for d in findings] == [("MC190", "r.yaml", 13)]
    assert report.checked == 1
    broken = compile_files({"r.yaml": RESILIENCE + "---\n" + RESILIENCE.split("---")[0]})
    assert not broken.ok
    assert check_compilation(broken, old)[0] == []


def test_int32_fields_reject_values_beyond_their_range() -> None:
    """Found by test_lowering_fuzz.py: Istio's CRDs state `format: int32` without a
    maximum; the check enforces the format like the API server's proto conversion does."""
    crd = virtual_service_crd()
    route = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    weight = route["properties"]["http"]["items"]["properties"]["route"]["items"]["properties"]
    weight["weight"] = {"type": "integer", "format": "int32"}
    crds = parse_crd_documents([crd], origin="crds.yaml")
    _, artifacts = rendered()
    objects = copy.deepcopy(dict(artifacts.objects))
    key = next(k for k in objects if k.kind == "VirtualService")
    objects[key]["spec"]["http"][0]["route"] = [
        {"destination": {"host": "a"}, "weight": 2**31 - 1},
        {"destination": {"host": "b"}, "weight": 2**31},
    ]
    report = check_artifacts(Artifacts(objects), crds)
    assert [(".".join(map(str, p.path)), p.message) for p in report.problems] == [
        ("spec.http.0.route.1.weight", "2147483648 is not a 'int32'")
    ]
