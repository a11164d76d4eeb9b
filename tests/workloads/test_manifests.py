"""Reading manifests: the kinds, Kubernetes' defaults, skipped documents, malformed input."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from compiler.workloads.manifests import read_manifest
from compiler.workloads.objects import LabelSelector, Requirement
from tests.helpers import run_cli
from tests.workloads.helpers import found, lint_with, service

DATA = Path(__file__).parent / "data"
MALFORMED = sorted((DATA / "malformed").iterdir())
_EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.+)$", re.MULTILINE)

HELM_OUTPUT = """\
---
# Source: shop/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata: {name: worker}
---
# Source: shop/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast}
---
---
# Source: shop/templates/cronjob.yaml
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: jobs}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: report}}
        spec:
          serviceAccountName: reporter
          restartPolicy: Never
          containers: [{name: main, image: report}]
---
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: StatefulSet
  metadata: {name: store}
  spec:
    selector: {matchLabels: {app: store}}
    template:
      metadata: {labels: {app: store}}
      spec:
        containers: [{name: redis, ports: [{name: tcp, containerPort: 6379}]}]
        initContainers:
        - {name: proxy, restartPolicy: Always, ports: [{containerPort: 15090}]}
        - {name: migrate, ports: [{containerPort: 9999}]}
- apiVersion: serving.knative.dev/v1
  kind: Service
  metadata: {name: knative}
"""


def _read(text: str, namespace: str = "default"):  # type: ignore[no-untyped-def]
    return read_manifest("m.yaml", textwrap.dedent(text).encode(), default_namespace=namespace)


def test_helm_output_kinds_lists_and_kubernetes_defaults() -> None:
    manifest = _read(HELM_OUTPUT, namespace="prod")
    assert manifest.problems == ()
    inventory = manifest.inventory
    assert [(a.namespace, a.name) for a in inventory.accounts] == [("prod", "worker")]
    cron, store = inventory.workloads
    assert (cron.kind, cron.namespace, cron.name) == ("CronJob", "jobs", "report")
    assert (cron.labels, cron.service_account) == ({"app": "report"}, "reporter")
    assert (store.kind, store.namespace, store.service_account) == (
        "StatefulSet",
        "prod",
        "default",
    )
    assert store.account_given is False
    # a native sidecar's port counts; a one-shot init container's does not
    assert [p.number for p in store.ports] == [6379, 15090]
    assert (store.span.file, store.span.line) == ("m.yaml", 34)
    assert manifest.note() == (
        "m.yaml: skipped ConfigMap/settings (v1), Service/knative (serving.knative.dev/v1) "
        "(--workloads reads workloads, Services, ServiceAccounts and Gateway API Gateways)"
    )


def test_gateway_api_gateway_of_class_istio_brings_its_deployment_and_account() -> None:
    manifest = _read(
        """\
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: edge, namespace: shop}
        spec:
          gatewayClassName: istio
          listeners: [{name: https, port: 443}, {name: http, port: 80}]
        """
    )
    inventory = manifest.inventory
    [pod] = inventory.pods("shop")
    assert (pod.kind, pod.name, pod.service_account) == ("Gateway", "edge-istio", "edge-istio")
    assert pod.labels == {"gateway.networking.k8s.io/gateway-name": "edge"}
    assert [p.number for p in pod.ports] == [80, 443]
    assert inventory.account("shop", "edge-istio") is not None
    assert inventory.account("shop", "edge") is None


def test_gateway_annotations_override_the_deployment_and_account_names() -> None:
    manifest = _read(
        """\
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata:
          name: edge
          namespace: shop
          annotations:
            gateway.istio.io/name-override: shop-edge
            gateway.istio.io/service-account: edge-proxy
        spec: {gatewayClassName: istio, listeners: [{name: http, port: 80}]}
        """
    )
    [pod] = manifest.inventory.pods("shop")
    assert (pod.name, pod.service_account) == ("shop-edge", "edge-proxy")
    assert manifest.inventory.account("shop", "edge-proxy") is not None
    assert manifest.inventory.account("shop", "edge-istio") is None


def test_label_selector_semantics() -> None:
    selector = LabelSelector(
        (("app", "cart"),),
        (
            Requirement("tier", "In", ("api", "web")),
            Requirement("canary", "DoesNotExist"),
            Requirement("zone", "NotIn", ("b",)),
        ),
    )
    assert selector.matches({"app": "cart", "tier": "api"})
    assert selector.matches({"app": "cart", "tier": "web", "zone": "a"})
    assert not selector.matches({"app": "cart", "tier": "db"})
    assert not selector.matches({"app": "cart", "tier": "api", "canary": "yes"})
    assert not selector.matches({"app": "cart", "tier": "api", "zone": "b"})
    assert str(selector) == "{app: cart, tier in (api, web), !canary, zone notin (b)}"
    assert LabelSelector().matches({})


def test_objects_without_namespace_take_the_given_default() -> None:
    """As `kubectl apply -n shop` would place them: --workloads-namespace."""
    manifests = {
        "cart.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: cart}
        spec:
          selector: {matchLabels: {app: cart}}
          template:
            metadata: {labels: {app: cart}}
            spec: {serviceAccountName: other, containers: [{name: main}]}
        """
    }
    in_shop = lint_with({"cart.yaml": service("cart")}, manifests, namespace="shop")
    assert [d.code for d in found(in_shop, "MC706")] == ["MC706"]
    in_default = lint_with({"cart.yaml": service("cart")}, manifests)
    assert found(in_default, "MC706") == []  # the Deployment is in default: shop not judged


@pytest.mark.parametrize("path", MALFORMED, ids=[p.name for p in MALFORMED])
def test_malformed_manifest_is_a_located_finding(path: Path) -> None:
    manifest = read_manifest(path.name, path.read_bytes(), default_namespace="default")
    assert manifest.problems, "a malformed manifest must give a finding"
    assert {d.code for d in manifest.problems} == {"MC701"}
    assert all(d.span.file == path.name for d in manifest.problems)
    expected = _EXPECT.search(path.read_text(errors="replace"))
    if expected is not None:
        line, col, message = int(expected[1]), int(expected[2]), expected[3]
        assert [(d.span.line, d.span.col) for d in manifest.problems if message in d.message] == [
            (line, col)
        ], [str(d.span) + " " + d.message for d in manifest.problems]


def test_malformed_manifests_through_the_cli_give_findings_never_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "cart.yaml").write_text(service("cart"))
    result = run_cli(
        "meshc", "lint", str(tmp_path), "--workloads", str(DATA / "malformed"), "--format", "json"
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.count('"code": "MC701"') >= len(MALFORMED)
