"""Every emitted object against Istio's published v1 CRDs (strict, plus their CEL rules)
and every NetworkPolicy against Kubernetes' own schema (kubernetes-validate, strict).

The CRD file cannot be vendored: it is read from ../shared/reference when present (CI has
it) and these tests skip, saying so, when it is not.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from compiler.artifacts import Artifacts
from compiler.lower import lower
from compiler.verify.crds import CrdSet, check_artifacts, load_crd_files
from tests.helpers import compile_files
from tests.lower.generate import generated_mesh
from tests.lower.support import BOOKINFO, REFERENCE_CRDS, RICH, render_dir

K8S_VERSION = "1.30"


@pytest.fixture(scope="module")
def reference_crds() -> CrdSet:
    if not REFERENCE_CRDS.is_file():
        reason = f"Istio's CRD file is not at {REFERENCE_CRDS} (a fresh clone); CRD checks skipped"
        print(reason)
        pytest.skip(reason)
    return load_crd_files([REFERENCE_CRDS])


def generated() -> Artifacts:
    compilation = compile_files(generated_mesh(60))
    assert compilation.ok, [f"{d.span}: {d.message}" for d in compilation.blocking()][:5]
    return lower(compilation)


FIXTURES: dict[str, Callable[[], Artifacts]] = {
    "bookinfo": cache(lambda: render_dir(BOOKINFO)),
    "rich": cache(lambda: render_dir(RICH)),
    "rich-step-2": cache(lambda: render_dir(RICH, state={"shop/catalog": 2})),
    "generated-60": cache(generated),
}


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_istio_objects_validate_against_reference_crds(
    fixture: str, reference_crds: CrdSet
) -> None:
    artifacts = FIXTURES[fixture]()
    report = check_artifacts(artifacts, reference_crds)
    istio = [key for key, _ in artifacts if key.group.endswith("istio.io")]
    assert report.checked == len(istio) > 0
    assert report.problems == [], "\n".join(str(p) for p in report.problems)
    assert report.cel_evaluated > 0
    if report.cel_gaps:
        print(f"{fixture}: CEL rules cel-python could not evaluate (not counted as passed):")
        for rule, reason in sorted(report.cel_gaps.items()):
            print(f"  {rule}: {reason}")
    assert report.unchecked_kinds <= {"NetworkPolicy (networking.k8s.io/v1)"}


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_network_policies_validate_against_kubernetes_schema(fixture: str) -> None:
    policies = [obj for key, obj in FIXTURES[fixture]() if key.kind == "NetworkPolicy"]
    assert policies, f"{fixture} emits no NetworkPolicy"
    for obj in policies:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_kubernetes_validate_strict_rejects_an_unknown_field() -> None:
    """The strict check is live: a misspelt field fails (without strict it would pass)."""
    obj: dict[str, Any] = next(o for k, o in FIXTURES["bookinfo"]() if k.kind == "NetworkPolicy")
    obj = {**obj, "spec": {**obj["spec"], "podSelectr": {}}}
    with pytest.raises(kubernetes_validate.ValidationError, match="podSelectr"):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


CEL_PYTHON_LACKS = ("isURL(", "url(", "getScheme(", "substring(", "isIP(", "isCIDR(", "quantity(")
"""Kubernetes CEL extension functions cel-python 0.5 does not implement."""

EMITTED_KINDS = {
    "AuthorizationPolicy",
    "DestinationRule",
    "PeerAuthentication",
    "Sidecar",
    "VirtualService",
}


def test_every_cel_rule_of_the_emitted_kinds_is_one_cel_python_can_evaluate() -> None:
    """Rules cel-python cannot evaluate are listed; none may sit on a kind meshc emits,
    or the CRD check above would silently evaluate less than it claims."""
    if not REFERENCE_CRDS.is_file():
        reason = f"Istio's CRD file is not at {REFERENCE_CRDS}; check skipped"
        print(reason)
        pytest.skip(reason)
    from ruamel.yaml import YAML

    documents = list(YAML(typ="safe").load_all(REFERENCE_CRDS.read_text()))
    lacking: list[tuple[str, str]] = []

    def walk(node: Any, kind: str) -> None:
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations") or []:
                if any(name in rule["rule"] for name in CEL_PYTHON_LACKS):
                    lacking.append((kind, " ".join(rule["rule"].split())))
            for child in node.values():
                walk(child, kind)
        elif isinstance(node, list):
            for child in node:
                walk(child, kind)

    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            walk(doc["spec"]["versions"], doc["spec"]["names"]["kind"])
    print("CEL rules in Istio's CRDs that cel-python cannot evaluate (Kubernetes CEL extensions):")
    for kind, rule in sorted(set(lacking)):
        print(f"  {kind}: {rule}")
    assert not {kind for kind, _ in lacking} & EMITTED_KINDS


def test_the_reference_check_is_live_unknown_fields_and_cel_violations_fail(
    reference_crds: CrdSet,
) -> None:
    """The same check rejects what the API server would: a misspelt field and a
    sub-millisecond timeout (Istio's CEL rule `duration(self) >= duration('1ms')`)."""
    import copy

    objects = copy.deepcopy(dict(FIXTURES["bookinfo"]().objects))
    vs_key = next(k for k in objects if k.kind == "VirtualService" and k.name == "ratings")
    objects[vs_key]["spec"]["http"][0]["timeout"] = "0.5ms"
    dr_key = next(k for k in objects if k.kind == "DestinationRule" and k.name == "ratings")
    objects[dr_key]["spec"]["trafficPolicy"]["tls"]["sni_name"] = "x"
    report = check_artifacts(Artifacts(objects), reference_crds)
    assert sorted(str(p) for p in report.problems) == [
        "DestinationRule.networking.istio.io/bookinfo/ratings spec.trafficPolicy.tls.sni_name: "
        "unknown field 'sni_name': the CRD's schema does not have it "
        "(this Istio version does not know it)",
        "VirtualService.networking.istio.io/bookinfo/ratings spec.http.0.timeout: "
        "must be a valid duration greater than 1ms (CEL rule: duration(self) >= duration('1ms'))",
    ]
