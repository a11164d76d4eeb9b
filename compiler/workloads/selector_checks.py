"""Workload rules about selectors: a service or a version whose labels select no pods."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from compiler.diagnostics import Related, Severity, Span
from compiler.kinds.rollout.model import RolloutDocument
from compiler.model.mesh import MeshModel, ServiceView
from compiler.model.traffic import current_rollout
from compiler.validate import Intent
from compiler.workloads.common import (
    judged_services,
    pods_related,
    selector_span,
    service_pods,
)
from compiler.workloads.objects import Inventory, LabelSelector, Workload, show_labels
from compiler.workloads.registry import WorkloadFinding, workload_rule


@workload_rule("MC702", "selector-matches-no-pods", Severity.ERROR, istio="IST0127")
def selector_matches_no_pods(model: MeshModel, inventory: Inventory) -> Iterable[WorkloadFinding]:
    """A Service's selector matches no pod template in the workload manifests.

    **What it does.** With `meshc lint --workloads DIR`, compares each Service's `selector`
    (by default `{app: <name>}`) with the pod template labels of every Deployment,
    StatefulSet, DaemonSet, ReplicaSet, Job, CronJob and Pod of its namespace in the
    manifests. Namespaces the manifests say nothing about are not judged.

    **Why is this bad.** Every object meshc emits for the service (AuthorizationPolicy,
    Sidecar, NetworkPolicy, DestinationRule subsets) selects its pods by these labels: a
    selector that matches no pod protects nothing and routes nowhere. Istio reports a
    policy that matches no workload as IST0127 (NoMatchingWorkloadsFound).

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: cart, namespace: shop}
    spec: {ports: [{name: grpc, port: 7070, protocol: grpc}]}
    # the Deployment's pods are labelled {app: cartservice}
    ```

    **Use instead.** `selector: {app: cartservice}`, or label the pod template
    `app: cart`.
    """
    for view in judged_services(model, inventory):
        if service_pods(view, inventory):
            continue
        namespace = view.key.namespace
        pods = inventory.pods(namespace)
        related: list[Related] = []
        kube = inventory.service(namespace, view.key.name)
        if kube is not None and kube.selector is not None:
            related.append(
                Related(
                    kube.selector_span,
                    f"Kubernetes Service {namespace}/{kube.name} selects "
                    f"{show_labels(kube.selector)}",
                )
            )
        related.extend(pods_related(_closest(view, pods)))
        yield WorkloadFinding(
            selector_span(view),
            f"{view.key} selects pods labelled {show_labels(sorted(view.selector.items()))}, "
            f"but none of the {len(pods)} pod template(s) of namespace {namespace} in the "
            "manifests carries these labels: its policies protect nothing and its routes "
            "have no endpoint",
            "set the Service's selector to its pods' labels, or add the labels to the pod "
            "template (spec.template.metadata.labels)",
            tuple(related),
        )


def _closest(view: ServiceView, pods: list[Workload]) -> list[Workload]:
    """The pod templates sharing most of the selector's labels (or the service's name)."""
    wanted = set(view.selector.items())

    def shared(workload: Workload) -> int:
        return len(wanted & set(workload.pod_labels))

    near = [w for w in pods if shared(w) or view.key.name in w.name]
    return sorted(near, key=lambda w: (-shared(w), w.name))


@workload_rule("MC703", "version-selects-no-pods", Severity.WARNING, istio="IST0127")
def version_selects_no_pods(model: MeshModel, inventory: Inventory) -> Iterable[WorkloadFinding]:
    """A version's labels select none of the service's pods (no Rollout sends it traffic yet).

    **What it does.** With `--workloads`, takes each version of a Service whose selector
    does match pods, ANDs the version's `labels` with the selector, and looks for a pod
    template carrying them all. A version a Rollout routes to is reported as MC704.

    **Why is this bad.** The version becomes a DestinationRule subset that has no endpoint:
    the first Rollout, A/B match or mirror that sends traffic to it fails with 503.

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: reviews, namespace: bookinfo}
    spec:
      ports: [{name: http, port: 9080, protocol: http}]
      versions: {v2: {labels: {version: v2}}}
    # the Deployment's pods are labelled only {app: reviews}
    ```

    **Use instead.** Label each version's pod template (`version: v2`), or drop the version.
    """
    for view, version, labels, pods in _empty_versions(model, inventory):
        if _routing(view, version) is not None:
            continue
        yield WorkloadFinding(
            view.intent.key_span("versions", version),
            f"version {version!r} of {view.key} selects pods labelled {show_labels(labels)}, "
            f"but none of the service's {len(pods)} pod template(s) carries them: its "
            "DestinationRule subset has no endpoint",
            f"label the pod template of {version} with {show_labels(_extra(view, version))}, "
            "or remove the version",
            pods_related(pods),
        )


@workload_rule("MC704", "routed-version-selects-no-pods", Severity.ERROR, istio="IST0127")
def routed_version_selects_no_pods(
    model: MeshModel, inventory: Inventory
) -> Iterable[WorkloadFinding]:
    """A Rollout sends traffic to a version whose labels select none of the service's pods.

    **What it does.** Like MC703, for the versions the service's Rollout routes to (its
    split, stable and canary versions, match rules and mirror); reported at the Rollout's
    line, with the version and the service's pod templates as related locations.

    **Why is this bad.** The Rollout's weight goes to a DestinationRule subset without
    endpoints: every request sent there fails with 503. A canary whose pods carry only
    `app:` fails its whole share of the traffic, and a caller that swallows the error
    makes the feature silently vanish.

    **Example.**
    ```yaml
    kind: Rollout
    metadata: {name: reviews, namespace: bookinfo}
    spec: {service: reviews, stable: v1, split: {v1: 80, v2: 20}}
    # versions v1/v2 select {version: v1}/{version: v2}; the pods carry only {app: reviews}
    ```

    **Use instead.** Add `version: v1` / `version: v2` to each Deployment's pod template
    labels (not only to the Deployment's own metadata).
    """
    for view, version, labels, pods in _empty_versions(model, inventory):
        routing = _routing(view, version)
        if routing is None:
            continue
        rollout, span, how = routing
        related = (
            Related(
                view.intent.key_span("versions", version),
                f"version {version!r} of {view.key}: pods labelled {show_labels(labels)}",
            ),
            *pods_related(pods),
        )
        yield WorkloadFinding(
            span,
            f"Rollout {rollout.model.metadata.name} {how} version {version!r} of {view.key}, "
            f"whose labels {show_labels(labels)} select none of the service's {len(pods)} pod "
            "template(s): every request routed there fails with 503",
            f"label the pod template of {version} with {show_labels(_extra(view, version))}",
            related,
        )


def _empty_versions(
    model: MeshModel, inventory: Inventory
) -> Iterator[tuple[ServiceView, str, list[tuple[str, str]], list[Workload]]]:
    """(service, version, its labels, the service's pods) for each version that selects
    none of them; services whose selector selects nothing are MC702's."""
    for view in judged_services(model, inventory):
        pods = service_pods(view, inventory)
        if not pods:
            continue
        for version in view.spec.versions:
            labels = view.version_labels(version)
            if not any(LabelSelector.of(labels).matches(w.labels) for w in pods):
                yield view, version, sorted(labels.items()), pods


def _extra(view: ServiceView, version: str) -> list[tuple[str, str]]:
    return sorted(view.spec.versions[version].labels.items())


def _routing(view: ServiceView, version: str) -> tuple[Intent[RolloutDocument], Span, str] | None:
    """Where the service's Rollout sends traffic to `version`, if it does."""
    rollout = current_rollout(view)
    if rollout is None:
        return None
    spec = rollout.model.spec
    if spec.split is not None and spec.split.get(version, 0) > 0:
        return rollout, rollout.key_span("split", version), f"sends {spec.split[version]}% to"
    if spec.split is None and spec.stable == version:
        return rollout, rollout.span("stable"), "sends its stable traffic to"
    if spec.canary == version and spec.steps:
        return rollout, rollout.span("canary"), "shifts canary traffic to"
    for index, match in enumerate(spec.match):
        if match.version == version:
            return rollout, rollout.span("match", index, "version"), "routes matching requests to"
    if spec.mirror is not None and spec.mirror.version == version:
        return rollout, rollout.span("mirror", "version"), "mirrors requests to"
    return None
