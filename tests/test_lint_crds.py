"""`meshc lint --crds FILE`: the tree is also lowered to Istio and checked against the given
CRDs; rejected fields are MC190 findings at the intent line (suppressible like any rule),
what could not be checked is a note, and a bad CRD file is a located usage error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import REPO, run_cli, write_tree

TREE = {
    "app.yaml": """\
    apiVersion: meshc/v1
    kind: Mesh
    metadata: {name: m}
    spec: {}
    ---
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: ratings, namespace: app}
    spec:
      ports: [{name: http, port: 80, protocol: http}]
    ---
    apiVersion: meshc/v1
    kind: Resilience
    metadata: {name: ratings, namespace: app}
    spec:
      service: ratings
      timeout: 2s
      retries: {attempts: 1, perTryTimeout: 500ms, retryOn: [connect-failure]}{comment}
    """
}

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: virtualservices.networking.istio.io}}
spec:
  group: networking.istio.io
  names: {{kind: VirtualService, plural: virtualservices}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              hosts: {{type: array, items: {{type: string}}}}
              http:
                type: array
                items:
                  type: object
                  properties:
                    name: {{type: string}}
                    timeout:
                      type: string
                      x-kubernetes-validations:
                      - rule: "duration(self) >= duration('1ms')"
                        message: must be a valid duration greater than 1ms
                    route:
                      type: array
                      items: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
{extra}"""
"""A cut-down VirtualService CRD; without `extra` it does not know `retries`."""

RETRIES = """\
                    retries:
                      type: object
                      properties:
                        attempts: {type: integer}
                        perTryTimeout: {type: string}
                        retryOn: {type: string}
"""


def setup(tmp_path: Path, *, comment: str = "", extra: str = "") -> tuple[Path, Path]:
    root = write_tree(
        tmp_path / "tree", {"app.yaml": TREE["app.yaml"].replace("{comment}", comment)}
    )
    crd = tmp_path / "crd.yaml"
    crd.write_text(CRD.format(extra=extra))
    return root, crd


def test_rejected_field_is_mc190_at_the_intent_line(tmp_path: Path) -> None:
    root, crd = setup(tmp_path)
    result = run_cli("meshc", "lint", "--crds", str(crd), str(root))
    assert result.returncode == 1, result.stderr
    assert (
        "app.yaml:18:3: error[MC190] VirtualService.networking.istio.io/app/ratings "
        "spec.http.0.retries: unknown field 'retries'" in result.stdout
    )
    assert "note: --crds: no CRD for DestinationRule (networking.istio.io/v1); not checked" in (
        result.stderr
    )
    listed = json.loads(
        run_cli("meshc", "lint", "--crds", str(crd), "--format", "json", str(root)).stdout
    )
    assert [(f["code"], f["name"], f["line"], f["column"]) for f in listed["findings"]] == [
        ("MC190", "rejected-by-crds", 18, 3)
    ]


def test_accepted_objects_lint_clean(tmp_path: Path) -> None:
    root, crd = setup(tmp_path, extra=RETRIES)
    result = run_cli("meshc", "lint", "--crds", str(crd), str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MC190" not in result.stdout
    assert "0 error(s), 0 warning(s), 0 info" in result.stdout


def test_mc190_is_a_registered_rule_that_can_be_suppressed(tmp_path: Path) -> None:
    root, crd = setup(tmp_path, comment="  # meshc: ignore[MC190] reason: Istio 1.24 rollout")
    result = run_cli("meshc", "lint", "--crds", str(crd), str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 suppressed" in result.stdout
    assert "MC001" not in result.stdout
    doc = run_cli("meshc", "rules", "MC190")
    assert doc.returncode == 0 and "rejected-by-crds (error)" in doc.stdout


def test_bad_crd_file_is_a_located_usage_error(tmp_path: Path) -> None:
    root, _ = setup(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: CustomResourceDefinition\nspec: [\n")
    result = run_cli("meshc", "lint", "--crds", str(bad), str(root))
    assert result.returncode == 2
    assert f"{bad}:3:1: not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli("meshc", "lint", "--crds", str(tmp_path / "nope.yaml"), str(root))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr


def test_tree_that_does_not_compile_is_not_lowered(tmp_path: Path) -> None:
    root, crd = setup(tmp_path)
    (root / "broken.yaml").write_text(
        "apiVersion: meshc/v1\nkind: Rollout\nmetadata: {name: x, namespace: app}\n"
        "spec: {service: nowhere, stable: v1}\n"
    )
    result = run_cli("meshc", "lint", "--crds", str(crd), str(root))
    assert result.returncode == 1
    assert "error[MC220]" in result.stdout and "MC190" not in result.stdout
    assert "note: --crds: the tree does not compile, so nothing was lowered or checked" in (
        result.stderr
    )


ISTIO_CRDS = REPO.parent / "shared" / "reference" / "istio" / "customresourcedefinitions.gen.yaml"


def test_bookinfo_against_istios_published_crds() -> None:
    if not ISTIO_CRDS.is_file():
        reason = f"Istio's CRDs not present at {ISTIO_CRDS} (a fresh clone); core tests above stand"
        print(reason)
        pytest.skip(reason)
    result = run_cli("meshc", "lint", "--crds", str(ISTIO_CRDS), str(REPO / "policies"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s), 0 info" in result.stdout
    assert "no CRD for VirtualService" not in result.stderr
