"""The cluster's workloads as the workload checks' plain objects (`compiler.workloads`).

Each live object is handed to the same reader `--workloads` uses for manifest files
(`compiler.workloads.manifests.read_manifest`), as a document of its own named
`cluster:<Kind>/<namespace>/<name>`: one conversion, the same defaults (no
`serviceAccountName` runs as `default`), the same malformed-object findings.

What counts as running: a Deployment, StatefulSet or ReplicaSet with replicas (absent
means 1), every DaemonSet, a Pod not finished or being deleted. Pods and ReplicaSets a
listed controller owns are represented by that controller's template, so one workload
is not counted three times. A namespace that exists always has its `default`
ServiceAccount, so every namespace of the mesh that exists is judged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from compiler.diagnostics import Diagnostic, Span
from compiler.model.mesh import MeshModel
from compiler.workloads.manifests import read_manifest
from compiler.workloads.objects import Gateway, Inventory, KubeService, ServiceAccount, Workload
from reconciler.kube.client import ApiRefusal, Cluster

LIVE_KINDS = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("v1", "Pod"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
)
"""What the workload checks read, listed per namespace (read-only RBAC in deploy/)."""
OWNING_CONTROLLERS = frozenset({"ReplicaSet", "StatefulSet", "DaemonSet", "Deployment"})
KEPT_METADATA = ("name", "namespace", "labels", "annotations")


@dataclass(frozen=True, slots=True)
class LiveInventory:
    inventory: Inventory
    problems: tuple[Diagnostic, ...]
    """Live objects the reader could not take (MC701), located at the object."""
    notes: tuple[str, ...]
    """Kinds the cluster does not serve (e.g. no Gateway API): not read."""


def mesh_namespaces(model: MeshModel) -> list[str]:
    """The namespaces with services, and those of the ingress gateways the Mesh names."""
    found = set(model.namespaces)
    found.update(gateway.namespace for gateway in model.settings.ingress_gateways)
    return sorted(found)


def live_inventory(cluster: Cluster, namespaces: Iterable[str]) -> LiveInventory:
    workloads: list[Workload] = []
    services: list[KubeService] = []
    accounts: list[ServiceAccount] = []
    gateways: list[Gateway] = []
    problems: list[Diagnostic] = []
    notes: list[str] = []
    for namespace in namespaces:
        listed: dict[str, list[dict[str, Any]]] = {}
        for api_version, kind in LIVE_KINDS:
            try:
                items = cluster.list(api_version, kind, namespace, "")
            except ApiRefusal as refusal:
                if refusal.status != 404:
                    raise
                note = f"preflight: the cluster serves no {kind} ({api_version}); not read"
                if note not in notes:
                    notes.append(note)
                continue
            listed[kind] = [{**item, "apiVersion": api_version, "kind": kind} for item in items]
        for obj in running(listed):
            read = read_manifest(_file(obj), _document(obj), default_namespace=namespace)
            problems.extend(read.problems)
            workloads.extend(read.inventory.workloads)
            services.extend(read.inventory.services)
            accounts.extend(read.inventory.accounts)
            gateways.extend(read.inventory.gateways)
    inventory = Inventory(tuple(workloads), tuple(services), tuple(accounts), tuple(gateways))
    return LiveInventory(inventory, tuple(problems), tuple(notes))


def running(listed: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The objects whose pods run (see the module's docstring), in a stable order."""
    controllers = {
        (kind, obj["metadata"]["name"])
        for kind in OWNING_CONTROLLERS
        for obj in listed.get(kind, [])
    }
    out = []
    for kind, objects in listed.items():
        for obj in objects:
            if kind in OWNING_CONTROLLERS and (obj.get("spec") or {}).get("replicas", 1) == 0:
                continue
            if kind in ("Pod", "ReplicaSet") and _owner(obj) in controllers:
                continue
            if kind == "Pod" and not _alive(obj):
                continue
            out.append(obj)
    return out


def _owner(obj: dict[str, Any]) -> tuple[str, str] | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind")), str(ref.get("name"))
    return None


def _alive(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def _file(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"cluster:{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


def _document(obj: dict[str, Any]) -> bytes:
    """What the reader looks at, without the server's bookkeeping (managedFields)."""
    meta = {key: obj["metadata"][key] for key in KEPT_METADATA if key in obj["metadata"]}
    kept = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta}
    if "spec" in obj:
        kept["spec"] = obj["spec"]
    return json.dumps(kept).encode()


def at_object(span: Span) -> Span:
    """A live object's place: the object itself (its line in a JSON rendering means
    nothing to a reader)."""
    return Span(span.file) if span.file.startswith("cluster:") else span
