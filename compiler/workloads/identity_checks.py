"""Workload rules about identities: the ServiceAccount a service's pods really run as."""

from __future__ import annotations

from collections.abc import Iterable

from compiler.diagnostics import Severity
from compiler.model.mesh import MeshModel, ServiceView
from compiler.workloads.common import (
    MAX_RELATED,
    account_related,
    identity_span,
    judged_services,
    listed,
    service_pods,
)
from compiler.workloads.objects import Inventory, Workload
from compiler.workloads.registry import WorkloadFinding, workload_rule

DEFAULT_ACCOUNT = "default"
"""Every namespace has it; a pod spec that names no account runs as it."""


@workload_rule("MC705", "identity-account-missing", Severity.WARNING)
def identity_account_missing(model: MeshModel, inventory: Inventory) -> Iterable[WorkloadFinding]:
    """A Service's identity names a ServiceAccount the manifests of its namespace do not define.

    **What it does.** With `--workloads`, looks for a ServiceAccount named like the
    Service's `identity` (by default its name) in its namespace (`default` always exists;
    a Gateway API Gateway of class istio brings `<name>-istio`).

    **Why is this bad.** Policies admit and name the service by the SPIFFE ID of that
    account. If it does not exist, pods that name it are not created, and pods that run as
    another account are not the identity the policies speak of. A warning, since the
    account may be created outside these manifests (then disable the rule in meshc.yaml).

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: cart, namespace: shop}
    spec: {identity: cart, ports: [{name: grpc, port: 7070, protocol: grpc}]}
    # the manifests define ServiceAccount cartservice only
    ```

    **Use instead.** `identity: cartservice`, or add `ServiceAccount cart` to the manifests.
    """
    for view in judged_services(model, inventory):
        account = view.service_account
        namespace = view.key.namespace
        if account == DEFAULT_ACCOUNT or inventory.account(namespace, account) is not None:
            continue
        defined = sorted(a.name for a in inventory.accounts if a.namespace == namespace)
        known = f"it defines {listed(defined)}" if defined else "it defines none"
        yield WorkloadFinding(
            identity_span(view),
            f"{view.key} runs as service account {account}, which the manifests of namespace "
            f"{namespace} do not define ({known}); pods naming it are not created",
            f"add a ServiceAccount {account} in {namespace}, or set identity: to the account "
            "the pods run as",
            account_related(service_pods(view, inventory)),
        )


@workload_rule("MC706", "pods-run-as-another-account", Severity.ERROR)
def pods_run_as_another_account(
    model: MeshModel, inventory: Inventory
) -> Iterable[WorkloadFinding]:
    """Pods of a Service run as another ServiceAccount than its identity.

    **What it does.** With `--workloads`, compares the Service's `identity` (by default its
    name) with the `serviceAccountName` of every pod template its selector selects; a pod
    spec that names none runs as `default`.

    **Why is this bad.** Istio identifies a caller by the account its pod runs as. The
    AuthorizationPolicies meshc emits admit the identity the intents name, so the service's
    calls are denied (403), and rules written about the service do not match its pods.

    **Example.**
    ```yaml
    kind: Service
    metadata: {name: reviews, namespace: bookinfo}
    spec: {identity: bookinfo-reviews, ports: [{name: http, port: 9080, protocol: http}]}
    # the Deployment's pod spec has no serviceAccountName (it runs as default)
    ```

    **Use instead.** `serviceAccountName: bookinfo-reviews` in the pod template, or set
    `identity:` to the account the pods run as.
    """
    for view in judged_services(model, inventory):
        others = [
            w for w in service_pods(view, inventory) if w.service_account != view.service_account
        ]
        if not others:
            continue
        accounts = sorted({w.service_account for w in others})
        yield WorkloadFinding(
            identity_span(view),
            f"{view.key} has identity {view.service_account}, but {_pods(others)} run as "
            f"{listed(accounts)}: the policies admit {view.spiffe_id}, so its calls are "
            "denied and rules about it miss its pods",
            f"set serviceAccountName: {view.service_account} in the pod template, or "
            f"identity: {accounts[0]} if that account is meant",
            account_related(others),
        )


@workload_rule("MC707", "default-account-shared", Severity.WARNING)
def default_account_shared(model: MeshModel, inventory: Inventory) -> Iterable[WorkloadFinding]:
    """Several services' pods run as their namespace's `default` ServiceAccount.

    **What it does.** With `--workloads`, groups the services of each namespace whose pods
    run as `default` (a pod spec without `serviceAccountName`) and reports each of them
    when there are two or more.

    **Why is this bad.** They share one identity: a rule that allows one of them allows all
    of them, and any pod of the namespace started without an account is each of them too.
    Zero trust needs one identity per service.

    **Example.** Two Deployments, `cart` and `checkout`, neither naming a
    `serviceAccountName`.

    **Use instead.** A ServiceAccount per service, named in each pod template and in each
    Service's `identity:`.
    """
    for namespace, group in sorted(_default_runners(model, inventory).items()):
        if len(group) < 2:
            continue
        for view, pods in group:
            others = [str(other.key) for other, _ in group if other.key != view.key]
            firsts = [other_pods[0] for other, other_pods in group if other is not view]
            related = (*account_related(pods), *account_related(firsts))[:MAX_RELATED]
            yield WorkloadFinding(
                identity_span(view),
                f"{view.key} runs its pods as the default service account of {namespace}, "
                f"like {listed(others)}: one identity for all, so a rule that allows one "
                "allows the others",
                "give each service its own ServiceAccount (serviceAccountName in the pod "
                "template, identity: in the Service)",
                related,
            )


def _default_runners(
    model: MeshModel, inventory: Inventory
) -> dict[str, list[tuple[ServiceView, list[Workload]]]]:
    found: dict[str, list[tuple[ServiceView, list[Workload]]]] = {}
    for view in judged_services(model, inventory):
        pods = [w for w in service_pods(view, inventory) if w.service_account == DEFAULT_ACCOUNT]
        if pods:
            found.setdefault(view.key.namespace, []).append((view, pods))
    return found


def _pods(workloads: list[Workload]) -> str:
    return "the pods of " + listed([w.describe() for w in workloads])
