"""Fixtures: the API stand-in over HTTP, or — with the `cluster` marker and KUBECONFIG set —
the real cluster KUBECONFIG names (which needs Istio's and Gateway API's CRDs installed)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.dynamic.exceptions import ConflictError

from reconciler.kube.client import Cluster, Retry, load_configuration
from reconciler.targets.kubernetes import MANAGED_BY, comparable, part_name
from tests.kube.apiserver import StandIn

NAMESPACES = ("bookinfo", "istio-system")
EMITTED = (
    ("v1", "Service"),
    ("networking.istio.io/v1", "ServiceEntry"),
    ("networking.istio.io/v1", "DestinationRule"),
    ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1", "Sidecar"),
    ("security.istio.io/v1", "AuthorizationPolicy"),
    ("security.istio.io/v1", "PeerAuthentication"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
)
FAST = Retry(attempts=4, base=0.01, cap=0.05, timeout=5.0)


class Kube:
    """One API server (the stand-in or a real cluster) as the tests drive it."""

    def __init__(self, kubeconfig: Path, stand_in: StandIn | None) -> None:
        self.kubeconfig = kubeconfig
        self.stand_in = stand_in
        self.cluster = Cluster(load_configuration(kubeconfig, None), FAST)

    def owned(self) -> dict[str, dict[str, Any]]:
        """Every object labelled as meshc's, without what the server keeps for itself."""
        found = {}
        for namespace in NAMESPACES:
            for api_version, kind in EMITTED:
                for item in self.cluster.list(api_version, kind, namespace, f"{MANAGED_BY}=meshc"):
                    item.setdefault("apiVersion", api_version)
                    item.setdefault("kind", kind)
                    found[part_name(item)] = comparable(item)
        return found

    def versions(self) -> dict[str, str]:
        """resourceVersion per owned object: equal before and after a pass that wrote nothing."""
        return {
            part_name(item): item["metadata"]["resourceVersion"]
            for namespace in NAMESPACES
            for api_version, kind in EMITTED
            for item in self.cluster.list(api_version, kind, namespace, f"{MANAGED_BY}=meshc")
        }

    def events(self, namespace: str) -> list[dict[str, Any]]:
        return self.cluster.list("v1", "Event", namespace, "")

    def read(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        stub = {"apiVersion": api_version, "kind": kind}
        return self.cluster.get({**stub, "metadata": {"namespace": namespace, "name": name}})

    def hand_edit(self, obj: dict[str, Any], spec: dict[str, Any]) -> None:
        """What `kubectl edit` does: an Update (merge patch) under its own manager."""
        resource = self.cluster.resource(obj["apiVersion"], obj["kind"])
        self.cluster.dynamic.patch(
            resource,
            body={"metadata": obj["metadata"], "spec": spec},
            content_type="application/merge-patch+json",
            field_manager="kubectl-edit",
        )

    def foreign_apply(self, obj: dict[str, Any], manager: str) -> None:
        """Another applier (a second GitOps tool) takes fields with force."""
        resource = self.cluster.resource(obj["apiVersion"], obj["kind"])
        self.cluster.dynamic.server_side_apply(
            resource, body=obj, field_manager=manager, force_conflicts=True
        )

    def create(self, obj: dict[str, Any]) -> None:
        """What `kubectl create` does (its own field manager)."""
        resource = self.cluster.resource(obj["apiVersion"], obj["kind"])
        self.cluster.dynamic.create(
            resource,
            body=obj,
            namespace=obj["metadata"].get("namespace"),
            field_manager="kubectl-create",
        )

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.cluster.delete(api_version, kind, namespace, name)


def _ensure_namespaces(kube: Kube) -> None:
    for namespace in NAMESPACES:
        with contextlib.suppress(ConflictError):  # it exists
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def _sweep(kube: Kube) -> None:
    """A real cluster starts each test with no meshc objects in the test namespaces, and
    nothing of the emitted kinds in `bookinfo` (the tests' own namespace: they create
    foreign objects there too)."""
    for part in kube.owned():
        api_version, kind, namespace, name = part.rsplit("/", 3)
        kube.delete(api_version, kind, namespace, name)
    for api_version, kind in EMITTED:
        for item in kube.cluster.list(api_version, kind, "bookinfo", ""):
            kube.delete(api_version, kind, "bookinfo", item["metadata"]["name"])


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[StandIn]:
    server = StandIn()
    for namespace in NAMESPACES:
        server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        yield server
    finally:
        server.close()


def _write_kubeconfig(server: StandIn, path: Path) -> Path:
    path.write_text(json.dumps(server.kubeconfig()))
    return path


@pytest.fixture
def standin_kube(stand_in: StandIn, tmp_path: Path) -> Iterator[Kube]:
    kube = Kube(_write_kubeconfig(stand_in, tmp_path / "kubeconfig"), stand_in)
    yield kube
    kube.cluster.close()


@pytest.fixture(params=["stand-in", pytest.param("cluster", marks=pytest.mark.cluster)])
def kube(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kube]:
    """The stand-in; and a real cluster too when KUBECONFIG is set."""
    if request.param == "cluster":
        config = os.environ.get("KUBECONFIG")
        if not config:
            pytest.skip("cluster: KUBECONFIG is not set; set it to run these tests on a cluster")
        kube = Kube(Path(config.split(os.pathsep)[0]), None)
        _ensure_namespaces(kube)
        _sweep(kube)
        yield kube
        _sweep(kube)
        kube.cluster.close()
        return
    server = request.getfixturevalue("stand_in")
    kube = Kube(_write_kubeconfig(server, tmp_path / "kubeconfig"), server)
    yield kube
    kube.cluster.close()
