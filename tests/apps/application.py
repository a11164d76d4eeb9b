"""An application as its own Kubernetes manifests describe it: the pods it runs, the Services in
front of them, and the calls its wiring makes (``<NAME>_ADDR=host:port`` environment
variables). Read independently of the intents, so a test can hold the rendered mesh objects
against what the application really does."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_POD_OWNERS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
_ADDRESS = re.compile(r"^(?P<host>[a-z0-9]([-a-z0-9.]*[a-z0-9])?):(?P<port>\d{1,5})$")
_GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


@dataclass(frozen=True)
class Workload:
    """The pods of one Deployment/StatefulSet (or of an Istio-deployed gateway)."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    service_account: str
    container_ports: Mapping[str, int]
    env: Mapping[str, str]
    ip: str
    is_gateway: bool = False

    @property
    def principal(self) -> str:
        return f"cluster.local/ns/{self.namespace}/sa/{self.service_account}"


@dataclass(frozen=True)
class KubeService:
    name: str
    namespace: str
    selector: Mapping[str, str]
    ports: Mapping[int, int | str]
    """Service port → targetPort (a number or a container port name)."""
    app_protocols: Mapping[int, str]

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"

    def selects(self, workload: Workload) -> bool:
        return workload.namespace == self.namespace and all(
            workload.labels.get(k) == v for k, v in self.selector.items()
        )

    def container_port(self, port: int, workload: Workload) -> int:
        target = self.ports[port]
        return target if isinstance(target, int) else workload.container_ports[target]


@dataclass(frozen=True)
class MeshCall:
    caller: Workload
    service: KubeService
    port: int


@dataclass(frozen=True)
class ExternalCall:
    caller: Workload
    host: str
    port: int


@dataclass(frozen=True)
class Application:
    documents: tuple[Mapping[str, Any], ...]
    workloads: tuple[Workload, ...]
    services: tuple[KubeService, ...]

    def service(self, name: str) -> KubeService:
        return next(s for s in self.services if s.name == name)

    def workload(self, name: str) -> Workload:
        return next(w for w in self.workloads if w.name == name)

    def pods_of(self, service: KubeService) -> list[Workload]:
        return [w for w in self.workloads if service.selects(w)]

    def calls(self) -> tuple[list[MeshCall], list[ExternalCall]]:
        """Each ``*_ADDR`` variable is a call: to a Service of the caller's namespace when
        its host names one, else to a host outside the cluster."""
        mesh: list[MeshCall] = []
        external: list[ExternalCall] = []
        for workload in self.workloads:
            for variable, value in sorted(workload.env.items()):
                match = _ADDRESS.match(value)
                if not variable.endswith("_ADDR") or match is None:
                    continue
                host, port = match["host"], int(match["port"])
                local = [
                    s for s in self.services if s.name == host and s.namespace == workload.namespace
                ]
                if local:
                    mesh.append(MeshCall(workload, local[0], port))
                else:
                    external.append(ExternalCall(workload, host, port))
        return mesh, external


def load_application(manifests: Path) -> Application:
    """Every document under ``manifests``; pod IPs are handed out in file order from
    10.8.0.10 so that address-based rules can be judged too."""
    documents = tuple(
        doc
        for path in sorted(manifests.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    )
    workloads: list[Workload] = []
    for doc in documents:
        ip = f"10.8.0.{10 + len(workloads)}"
        if doc["kind"] in _POD_OWNERS:
            workloads.append(_pod_workload(doc, ip))
        elif doc["kind"] == "Gateway" and doc["spec"].get("gatewayClassName") == "istio":
            workloads.append(_istio_gateway_workload(doc, ip))
    services = tuple(kube_service(doc) for doc in documents if doc["kind"] == "Service")
    return Application(documents, tuple(workloads), services)


def _pod_workload(doc: Mapping[str, Any], ip: str) -> Workload:
    template = doc["spec"]["template"]
    spec = template["spec"]
    ports: dict[str, int] = {}
    env: dict[str, str] = {}
    for container in spec["containers"]:
        ports.update({p["name"]: int(p["containerPort"]) for p in container.get("ports") or []})
        env.update({e["name"]: str(e["value"]) for e in container.get("env") or []})
    return Workload(
        name=doc["metadata"]["name"],
        namespace=doc["metadata"]["namespace"],
        labels=dict(template["metadata"]["labels"]),
        service_account=spec.get("serviceAccountName", "default"),
        container_ports=ports,
        env=env,
        ip=ip,
    )


def _istio_gateway_workload(doc: Mapping[str, Any], ip: str) -> Workload:
    """What Istio deploys for a Gateway of class istio: ``<name>-istio``, running as the
    service account of that name, its pods labelled with the Gateway's name and listening on
    the listener ports."""
    name = doc["metadata"]["name"]
    listeners = doc["spec"]["listeners"]
    return Workload(
        name=f"{name}-istio",
        namespace=doc["metadata"]["namespace"],
        labels={_GATEWAY_NAME_LABEL: name},
        service_account=f"{name}-istio",
        container_ports={str(lis["name"]): int(lis["port"]) for lis in listeners},
        env={},
        ip=ip,
        is_gateway=True,
    )


def kube_service(doc: Mapping[str, Any]) -> KubeService:
    """A Kubernetes Service document (the application's or one meshc renders)."""
    ports = doc["spec"].get("ports") or []
    return KubeService(
        name=doc["metadata"]["name"],
        namespace=doc["metadata"]["namespace"],
        selector=dict(doc["spec"].get("selector") or {}),
        ports={int(p["port"]): _target_port(p) for p in ports},
        app_protocols={int(p["port"]): str(p.get("appProtocol", "tcp")) for p in ports},
    )


def _target_port(port: Mapping[str, Any]) -> int | str:
    """``targetPort`` defaults to ``port``; a name refers to a container port."""
    target = port.get("targetPort", port["port"])
    return int(target) if str(target).isdecimal() else str(target)
