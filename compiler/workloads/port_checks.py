"""Workload rules about ports: what the containers listen on and what the Kubernetes
Service forwards, against the ports the intents declare."""

from __future__ import annotations

from collections.abc import Iterable

from compiler.diagnostics import Related, Severity, Span
from compiler.kinds.service.model import Port
from compiler.model.mesh import MeshModel, ServiceView
from compiler.workloads.common import MAX_RELATED, judged_services, listed, name_span, service_pods
from compiler.workloads.objects import Inventory, KubeService, ServicePort, Workload
from compiler.workloads.registry import WorkloadFinding, workload_rule


@workload_rule("MC708", "target-port-not-exposed", Severity.WARNING)
def target_port_not_exposed(model: MeshModel, inventory: Inventory) -> Iterable[WorkloadFinding]:
    """No container of the service's pods declares the port a Service port targets.

    **What it does.** With `--workloads`, looks for each port's `targetPort` (by default its
    `port`) among the `containerPort`s of the pod templates the Service selects. Pods whose
    containers declare no port at all are not judged.

    **Why is this bad.** meshc's AuthorizationPolicies and NetworkPolicies allow the target
    port: if the application listens on another one, the allowed port carries nothing and
    the real one is denied. A warning, because Kubernetes treats `containerPort` as
    information only: a container may listen on a port it does not declare.

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: cart, namespace: shop}
    spec: {ports: [{name: grpc, port: 7070, protocol: grpc}]}
    # the container declares containerPort: 8080
    ```

    **Use instead.** `ports: [{name: grpc, port: 7070, targetPort: 8080, protocol: grpc}]`.
    """
    for view in judged_services(model, inventory):
        declaring = [w for w in service_pods(view, inventory) if w.ports]
        if not declaring:
            continue
        exposed = {port.number for w in declaring for port in w.ports}
        for index, port in enumerate(view.spec.ports):
            if port.container_port in exposed:
                continue
            yield WorkloadFinding(
                _target_span(view, index, port),
                f"port {port.name} of {view.key} targets container port {port.container_port}, "
                f"which no container of its pods declares (they declare "
                f"{listed([str(n) for n in sorted(exposed)], limit=6)})",
                "set targetPort: to the port the application listens on, or declare the port "
                "in the container (ports[].containerPort)",
                tuple(
                    Related(
                        w.ports_span,
                        f"{w.describe()} declares {listed([str(p) for p in w.ports], limit=6)}",
                    )
                    for w in declaring[:MAX_RELATED]
                ),
            )


@workload_rule("MC709", "port-differs-from-kubernetes-service", Severity.ERROR)
def port_differs_from_kubernetes_service(
    model: MeshModel, inventory: Inventory
) -> Iterable[WorkloadFinding]:
    """A Service port is missing from the Kubernetes Service of the same name, or reaches
    another container port there.

    **What it does.** With `--workloads`, finds the Kubernetes Service named like the
    Service in its namespace and compares each port: the `port` must be one of its ports,
    and its `targetPort` (a number, a container port's name, or the port itself) must be
    the container port the intent declares.

    **Why is this bad.** Callers connect to the Kubernetes Service's port, and the sidecar
    receives the traffic on its target port. Routes and resilience that meshc sets on
    another port never apply, and policies on another target port deny the real traffic.

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: cart, namespace: shop}
    spec: {ports: [{name: grpc, port: 7070, protocol: grpc}]}
    # the Kubernetes Service: ports: [{port: 7070, targetPort: 8080}]
    ```

    **Use instead.** `ports: [{name: grpc, port: 7070, targetPort: 8080, protocol: grpc}]`.
    """
    for view in judged_services(model, inventory):
        kube = inventory.service(view.key.namespace, view.key.name)
        if kube is None:
            continue
        pods = service_pods(view, inventory)
        for index, port in enumerate(view.spec.ports):
            finding = _compare_port(view, index, port, kube, pods)
            if finding is not None:
                yield finding


@workload_rule("MC710", "kubernetes-service-missing", Severity.WARNING)
def kubernetes_service_missing(model: MeshModel, inventory: Inventory) -> Iterable[WorkloadFinding]:
    """A Service with ports has no Kubernetes Service of the same name in the manifests.

    **What it does.** With `--workloads`, looks for a Kubernetes Service named like each
    Service (with ports) in the same namespace.

    **Why is this bad.** Callers reach `<name>.<namespace>.svc`: without a Kubernetes
    Service the name does not resolve, and meshc's routes and DestinationRules are for a
    host nobody can call. A warning, since the Service may come from elsewhere.

    **Example.** `kind: Service, metadata: {name: cart}` in the intents, while the
    manifests name their Service `cartservice`.

    **Use instead.** Name the intent like the Kubernetes Service (`cartservice`), or add
    the Kubernetes Service.
    """
    for view in judged_services(model, inventory):
        namespace = view.key.namespace
        if not view.spec.ports or inventory.service(namespace, view.key.name) is not None:
            continue
        names = sorted(s.name for s in inventory.services if s.namespace == namespace)
        known = f"it has {listed(names, limit=5)}" if names else "it has none"
        yield WorkloadFinding(
            name_span(view),
            f"{view.key}: the manifests of namespace {namespace} define no Kubernetes Service "
            f"{view.key.name} ({known}), so callers cannot resolve its host",
            "name the Service like its Kubernetes Service, or add one",
        )


def _compare_port(
    view: ServiceView, index: int, port: Port, kube: KubeService, pods: list[Workload]
) -> WorkloadFinding | None:
    where = f"Kubernetes Service {kube.namespace}/{kube.name}"
    match = next((p for p in kube.ports if p.port == port.port), None)
    if match is None:
        ports = listed([str(p.port) for p in kube.ports], limit=6) or "no port"
        return WorkloadFinding(
            view.intent.span("ports", index, "port"),
            f"port {port.port} of {view.key} is not a port of the {where} (it has {ports}): "
            "callers connect to those, so what meshc sets on this port never applies",
            "use the Kubernetes Service's port number",
            (Related(kube.span, f"{where}: ports {ports}"),),
        )
    target = _resolve_target(match, pods)
    if target is None or target == port.container_port:
        return None
    return WorkloadFinding(
        _target_span(view, index, port),
        f"port {port.port} of {view.key} targets container port {port.container_port}, but the "
        f"{where} sends it to {target}: policies on {port.container_port} do not cover the "
        "traffic",
        f"set targetPort: {target}",
        (Related(match.span, f"{where}: port {match.port} -> targetPort {match.target_port}"),),
    )


def _resolve_target(port: ServicePort, pods: list[Workload]) -> int | None:
    """The container port a Kubernetes Service port reaches (a named target is looked up
    in the selected pods; None when they do not name it)."""
    if port.target_port is None:
        return port.port
    if isinstance(port.target_port, int):
        return port.target_port
    if port.target_port.isdigit():
        return int(port.target_port)
    for workload in pods:
        for container_port in workload.ports:
            if container_port.name == port.target_port:
                return container_port.number
    return None


def _target_span(view: ServiceView, index: int, port: Port) -> Span:
    field = "targetPort" if port.target_port is not None else "port"
    return view.intent.span("ports", index, field)
