"""Workload rules about the ingress gateways the Mesh names."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from compiler.diagnostics import Severity, Span
from compiler.kinds.mesh.model import ResolvedGateway
from compiler.model.mesh import MeshModel
from compiler.workloads.common import MAX_RELATED, account_related, listed, pods_related
from compiler.workloads.objects import Inventory, LabelSelector, Workload, show_labels
from compiler.workloads.registry import WorkloadFinding, workload_rule

CLASSIC_LABELS = (("istio", "ingressgateway"),)
"""The labels of the classic gateway deployment Istio's installers make."""


@dataclass(frozen=True, slots=True)
class UsedGateway:
    """A gateway the intents rely on, and the line that names it."""

    gateway: ResolvedGateway
    span: Span
    explicit: bool
    """Whether the Mesh names it (else it is meshc's default, relied on by a policy)."""


@workload_rule("MC711", "gateway-not-in-manifests", Severity.ERROR)
def gateway_not_in_manifests(model: MeshModel, inventory: Inventory) -> Iterable[WorkloadFinding]:
    """An ingress gateway the Mesh names (or meshc's default one) is not in the manifests.

    **What it does.** With `--workloads`, for each gateway of `Mesh.spec.ingressGateway`
    that the intents rely on (the Mesh names it, or a policy admits `ingressGateway`):
    when the manifests describe the gateway's namespace, looks there for pods carrying
    its selector (a Gateway API `Gateway` of class `istio` brings the deployment
    `<name>-istio`, labelled `gateway.networking.k8s.io/gateway-name: <name>`); when they
    do not, but provide a gateway elsewhere, reports that one.

    **Why is this bad.** Policies admit the gateway by its service account and its pods by
    its labels: if the application's gateway is another one (meshc's default is
    `istio-system` with `istio-ingressgateway-service-account`), every external request is
    denied (403), and a namespace under default deny blocks the real gateway.

    **Example.**
    ```yaml
    kind: Mesh
    metadata: {name: shop}
    spec: {}          # default gateway: istio-system/istio-ingressgateway
    # the manifests: kind: Gateway, metadata: {name: frontend, namespace: shop},
    #                spec: {gatewayClassName: istio, ...}
    ```

    **Use instead.**
    ```yaml
    spec:
      ingressGateway: {api: gateway-api, name: frontend, namespace: shop}
    ```
    """
    for used in used_gateways(model):
        gateway = used.gateway
        selector = LabelSelector(gateway.selector)
        if gateway.namespace in inventory.namespaces:
            if inventory.selected(gateway.namespace, selector):
                continue
            candidates = _candidates(inventory, selector)
            yield WorkloadFinding(
                used.span,
                f"{_named(used)} selects pods labelled {show_labels(gateway.selector)} in "
                f"namespace {gateway.namespace}, but no pod template there carries them"
                + _provided(candidates),
                _hint(candidates),
                pods_related(candidates),
            )
            continue
        candidates = _candidates(inventory, selector)
        if candidates:
            yield WorkloadFinding(
                used.span,
                f"{_named(used)} is not in the manifests (they describe nothing in namespace "
                f"{gateway.namespace})"
                + _provided(candidates)
                + f": policies admit the gateway as {gateway.service_account}, so the "
                "application's gateway is denied (403)",
                _hint(candidates),
                pods_related(candidates),
            )


@workload_rule("MC712", "gateway-runs-as-another-account", Severity.ERROR)
def gateway_runs_as_another_account(
    model: MeshModel, inventory: Inventory
) -> Iterable[WorkloadFinding]:
    """The pods of an ingress gateway run as another account than the Mesh says.

    **What it does.** With `--workloads`, takes the pods a gateway's selector selects in
    its namespace and compares the account they run as with the gateway's
    `serviceAccount` (default: `istio-ingressgateway-service-account`, or `<name>-istio`
    for a Gateway API gateway).

    **Why is this bad.** AuthorizationPolicies admit the gateway by the SPIFFE ID of that
    account: requests from pods running as another one are denied (403).

    **Example.** `ingressGateway: {namespace: shop, selector: {app: edge}}` while the
    `edge` Deployment runs as `edge-proxy`.

    **Use instead.** `ingressGateway: {namespace: shop, selector: {app: edge},
    serviceAccount: edge-proxy}`.
    """
    for used in used_gateways(model):
        gateway = used.gateway
        pods = inventory.selected(gateway.namespace, LabelSelector(gateway.selector))
        others = [w for w in pods if w.service_account != gateway.service_account]
        if not others:
            continue
        accounts = sorted({w.service_account for w in others})
        yield WorkloadFinding(
            used.span,
            f"{_named(used)} is admitted as service account {gateway.service_account}, but "
            f"its pods run as {listed(accounts)}: their requests are denied (403)",
            f"set the gateway's serviceAccount: {accounts[0]}, or run its pods as "
            f"{gateway.service_account}",
            account_related(others),
        )


def used_gateways(model: MeshModel) -> list[UsedGateway]:
    """The gateways the intents rely on, each with the line to report at: its entry in the
    Mesh when the Mesh names gateways, else the first policy source admitting it."""
    gateways = model.settings.ingress_gateways
    mesh = model.mesh
    if mesh is not None and "ingress_gateway" in mesh.model.spec.model_fields_set:
        listed_form = isinstance(mesh.model.spec.ingress_gateway, list)
        return [
            UsedGateway(
                gateway,
                mesh.span("ingressGateway", index) if listed_form else mesh.span("ingressGateway"),
                explicit=True,
            )
            for index, gateway in enumerate(gateways)
        ]
    admitted: dict[str, Span] = {}
    for name, span in _admitting_sources(model):
        for gateway in gateways:
            if name is None or name == gateway.name:
                admitted.setdefault(gateway.name, span)
    return [
        UsedGateway(gateway, admitted[gateway.name], explicit=False)
        for gateway in gateways
        if gateway.name in admitted
    ]


def _admitting_sources(model: MeshModel) -> Iterator[tuple[str | None, Span]]:
    """(the gateway named, or None for any; the source's line) of every policy source
    admitting an ingress gateway, in tree order."""
    for policy in model.policies:
        for index, rule in enumerate(policy.model.spec.rules):
            for number, source in enumerate(rule.from_):
                if source.ingress_gateway:
                    name = (
                        source.ingress_gateway if isinstance(source.ingress_gateway, str) else None
                    )
                    yield name, policy.span("rules", index, "from", number, "ingressGateway")


def elsewhere(inventory: Inventory, gateway: ResolvedGateway) -> list[Workload]:
    """The gateways the manifests provide for one whose namespace they do not describe."""
    return _candidates(inventory, LabelSelector(gateway.selector))


def _candidates(inventory: Inventory, selector: LabelSelector) -> list[Workload]:
    """Gateways the manifests provide: a Gateway of class istio, the classic gateway's
    labels, or pods carrying the selector in any namespace."""
    classic = LabelSelector(CLASSIC_LABELS)
    found = [g.workload() for g in inventory.gateways if g.deployed_by_istio]
    found.extend(
        w for w in inventory.workloads if classic.matches(w.labels) or selector.matches(w.labels)
    )
    return sorted(found, key=lambda w: (w.namespace, w.name))[:MAX_RELATED]


def _named(used: UsedGateway) -> str:
    gateway = used.gateway
    if used.explicit:
        return f"the Mesh's ingress gateway {gateway.name}"
    return f"meshc's default ingress gateway {gateway.name} (the Mesh names none)"


def _provided(candidates: list[Workload]) -> str:
    if not candidates:
        return ""
    shown = [f"{w.describe()} (account {w.service_account})" for w in candidates]
    return f"; the manifests provide {listed(shown)}"


def _hint(candidates: list[Workload]) -> str:
    for workload in candidates:
        if workload.kind == "Gateway":
            name = workload.labels.get("gateway.networking.k8s.io/gateway-name", workload.name)
            return (
                "name the application's gateway in the Mesh: ingressGateway: {api: "
                f"gateway-api, name: {name}, namespace: {workload.namespace}}}"
            )
    if candidates:
        workload = candidates[0]
        return (
            "name the application's gateway in the Mesh: ingressGateway: {namespace: "
            f"{workload.namespace}, serviceAccount: {workload.service_account}, selector: "
            f"{show_labels(workload.pod_labels)}}}"
        )
    return "fix Mesh.spec.ingressGateway (namespace, selector), or add the gateway's manifests"
