"""The stand-in's API-server semantics, through the official client over HTTP: what the
Kubernetes target's tests rely on must hold here, or they would prove nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.dynamic.exceptions import (
    ConflictError,
    DynamicApiError,
    MethodNotAllowedError,
    NotFoundError,
)

from tests.kube.conftest import Kube

VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "bookinfo", "labels": {"tier": "back"}},
    "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]},
}


def _apply(kube: Kube, body: dict[str, Any], manager: str = "meshc", **extra: Any) -> Any:
    resource = kube.cluster.resource(body["apiVersion"], body["kind"])
    response = kube.cluster.dynamic.server_side_apply(
        resource, body=body, field_manager=manager, serialize=False, **extra
    )
    return response.status, json.loads(response.data)


def test_apply_creates_if_missing_and_a_dry_run_never_mutates(standin_kube: Kube) -> None:
    status, dry = _apply(standin_kube, VS, dry_run="All")
    assert status == 201 and dry["metadata"]["resourceVersion"]
    assert (
        standin_kube.read("networking.istio.io/v1", "VirtualService", "bookinfo", "reviews") is None
    )
    status, created = _apply(standin_kube, VS)
    assert status == 201 and created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
    changed = {**VS, "spec": {**VS["spec"], "hosts": ["other"]}}
    status, would = _apply(standin_kube, changed, dry_run="All")
    assert status == 200 and would["spec"]["hosts"] == ["other"]
    live = standin_kube.read("networking.istio.io/v1", "VirtualService", "bookinfo", "reviews")
    assert live is not None and live["spec"]["hosts"] == ["reviews"]
    assert live["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    status, same = _apply(standin_kube, VS)
    assert (
        status == 200
        and same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    )
    _, updated = _apply(standin_kube, changed)
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


def test_field_ownership_conflicts_and_force(standin_kube: Kube) -> None:
    _apply(standin_kube, VS)
    theirs = {
        **VS,
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {"hosts": ["x"]},
    }
    with pytest.raises(ConflictError) as conflict:
        _apply(standin_kube, theirs, manager="other")
    causes = json.loads(conflict.value.body)["details"]["causes"]
    assert causes == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "meshc"',
            "field": ".spec.hosts",
        }
    ]
    _, forced = _apply(standin_kube, theirs, manager="other", force_conflicts=True)
    owners = {e["manager"]: e["fieldsV1"] for e in forced["metadata"]["managedFields"]}
    assert owners["other"] == {"f:spec": {"f:hosts": {}}}
    assert "f:hosts" not in owners["meshc"]["f:spec"] and "f:http" in owners["meshc"]["f:spec"]
    # A field the applier stops declaring, owned by nobody else, is removed.
    # Declaring the other manager's value is no conflict: both own the field then.
    _, dropped = _apply(standin_kube, {**VS, "spec": {"hosts": ["x"]}})
    assert "http" not in dropped["spec"]
    owners = {e["manager"]: e["fieldsV1"] for e in dropped["metadata"]["managedFields"]}
    assert owners["meshc"]["f:spec"] == owners["other"]["f:spec"] == {"f:hosts": {}}


def test_create_put_and_optimistic_concurrency(standin_kube: Kube) -> None:
    dynamic = standin_kube.cluster.dynamic
    resource = standin_kube.cluster.resource("v1", "Service")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "a", "namespace": "bookinfo"},
    }
    created = dynamic.create(resource, body={**service, "spec": {"ports": [{"port": 80}]}})
    with pytest.raises(ConflictError):
        dynamic.create(resource, body=service)
    stale = {**service, "metadata": {**service["metadata"], "resourceVersion": "1"}}
    with pytest.raises(ConflictError) as err:
        dynamic.replace(resource, body=stale)
    assert "the object has been modified" in json.loads(err.value.body)["message"]
    current = {
        **service,
        "metadata": {**service["metadata"], "resourceVersion": created.metadata.resourceVersion},
        "spec": {"ports": [{"port": 81}]},
    }
    replaced = dynamic.replace(resource, body=current)
    assert replaced.spec.ports[0].port == 81
    assert int(replaced.metadata.resourceVersion) > int(created.metadata.resourceVersion)
    with pytest.raises(NotFoundError) as missing:
        dynamic.create(
            resource, body={**service, "metadata": {"name": "b", "namespace": "nowhere"}}
        )
    assert 'namespaces "nowhere" not found' in json.loads(missing.value.body)["message"]


def test_lists_select_by_label_and_say_their_kind(standin_kube: Kube) -> None:
    for name, tier in (("a", "back"), ("b", "front"), ("c", None)):
        labels = {"tier": tier} if tier else {}
        _apply(
            standin_kube,
            {**VS, "metadata": {"name": name, "namespace": "bookinfo", "labels": labels}},
        )
    resource = standin_kube.cluster.resource("networking.istio.io/v1", "VirtualService")

    def names(selector: str) -> list[str]:
        listed = standin_kube.cluster.dynamic.get(
            resource, namespace="bookinfo", label_selector=selector
        )
        assert (listed.kind, listed.apiVersion) == ("VirtualServiceList", "networking.istio.io/v1")
        return sorted(item.metadata.name for item in listed.items)

    assert names("tier=back") == ["a"]
    assert names("tier!=back") == ["b", "c"]
    assert names("tier in (back,front)") == ["a", "b"]
    assert names("tier notin (back)") == ["b", "c"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c"]
    assert names("tier,tier!=front") == ["a"]


def test_crds_are_read_only_and_deletes_are_served(standin_kube: Kube) -> None:
    assert standin_kube.stand_in is not None
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "virtualservices.networking.istio.io"},
        "spec": {"group": "networking.istio.io"},
    }
    standin_kube.stand_in.seed(crd)
    assert standin_kube.read(crd["apiVersion"], crd["kind"], "", crd["metadata"]["name"])
    with pytest.raises(MethodNotAllowedError):
        _apply(standin_kube, crd)
    _apply(standin_kube, VS)
    standin_kube.delete("networking.istio.io/v1", "VirtualService", "bookinfo", "reviews")
    assert (
        standin_kube.read("networking.istio.io/v1", "VirtualService", "bookinfo", "reviews") is None
    )
    with pytest.raises(DynamicApiError):
        standin_kube.cluster.dynamic.delete(
            standin_kube.cluster.resource("networking.istio.io/v1", "VirtualService"),
            name="reviews",
            namespace="bookinfo",
        )
