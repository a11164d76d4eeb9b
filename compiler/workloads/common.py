"""What several workload checks share: which services are judged, where to point, and
how a workload is shown as a related location."""

from __future__ import annotations

from collections.abc import Iterable

from compiler.diagnostics import Related, Span
from compiler.model.mesh import MeshModel, ServiceView
from compiler.workloads.objects import Inventory, LabelSelector, Workload, show_labels

MAX_RELATED = 5
"""Related locations per finding: enough to see the pattern, few enough to read."""


def judged_services(model: MeshModel, inventory: Inventory) -> list[ServiceView]:
    """The declared services in a namespace the inventory describes, in key order (a
    namespace it says nothing about may be deployed from elsewhere: not judged)."""
    covered = inventory.namespaces
    return sorted(
        (view for view in model.services.values() if view.key.namespace in covered),
        key=lambda view: view.key,
    )


def service_pods(view: ServiceView, inventory: Inventory) -> list[Workload]:
    """The pod templates the service's selector selects."""
    return inventory.selected(view.key.namespace, LabelSelector.of(view.selector))


def name_span(view: ServiceView) -> Span:
    return view.intent.doc.span("metadata", "name")


def selector_span(view: ServiceView) -> Span:
    """The selector as written, or the name that gives the default `{app: <name>}`."""
    return view.intent.span("selector") if view.spec.selector is not None else name_span(view)


def identity_span(view: ServiceView) -> Span:
    """The identity as written, or the name that is the default account."""
    return view.intent.span("identity") if view.spec.identity is not None else name_span(view)


def pods_related(workloads: Iterable[Workload]) -> tuple[Related, ...]:
    return tuple(
        Related(w.labels_span, f"{w.describe()}: pods labelled {show_labels(w.pod_labels)}")
        for w in list(workloads)[:MAX_RELATED]
    )


def account_related(workloads: Iterable[Workload]) -> tuple[Related, ...]:
    return tuple(
        Related(w.account_span, f"{w.describe()} runs as {_account(w)}")
        for w in list(workloads)[:MAX_RELATED]
    )


def _account(workload: Workload) -> str:
    if workload.kind == "Gateway":
        return f"{workload.service_account} (the account Istio makes for the Gateway)"
    if workload.account_given:
        return workload.service_account
    return "default (its pod spec names no serviceAccountName)"


def listed(names: list[str], *, limit: int = 3) -> str:
    """`a, b and c` (`a, b, c and 2 more` past `limit`)."""
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
