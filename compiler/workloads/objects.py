"""The workloads the intents assume, as plain backend-neutral values.

Read from the application's manifests today (`compiler.workloads.manifests`), and later
from a live cluster by the reconciler: the checks (`compiler.workloads.checks`) only ever
see these values, never YAML or an API client. Every object keeps the location it was
read from, which findings report as a related location.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from compiler.diagnostics import Span
from compiler.kinds.mesh.model import GATEWAY_NAME_LABEL

Labels = tuple[tuple[str, str], ...]
"""Labels as sorted (key, value) pairs: hashable, comparable, deterministic."""

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist"]

ISTIO_GATEWAY_CLASS = "istio"
"""The `gatewayClassName` for which Istio deploys `<name>-istio` itself."""


def labels_of(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted(mapping.items()))


def show_labels(labels: Iterable[tuple[str, str]]) -> str:
    """`{app: reviews, version: v2}`, as a user writes them."""
    return "{" + ", ".join(f"{key}: {value}" for key, value in labels) + "}"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `matchExpressions` entry of a Kubernetes label selector."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # NotIn: absent keys match, as in Kubernetes

    def __str__(self) -> str:
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        word = "in" if self.operator == "In" else "notin"
        return f"{self.key} {word} ({', '.join(self.values)})"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """`matchLabels` ANDed with `matchExpressions`; an empty selector selects everything."""

    match_labels: Labels = ()
    expressions: tuple[Requirement, ...] = ()

    @classmethod
    def of(cls, labels: Mapping[str, str]) -> LabelSelector:
        return cls(labels_of(labels))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.match_labels) and all(
            requirement.matches(labels) for requirement in self.expressions
        )

    def __str__(self) -> str:
        parts = [f"{key}: {value}" for key, value in self.match_labels]
        parts.extend(str(requirement) for requirement in self.expressions)
        return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True, slots=True)
class ContainerPort:
    container: str
    number: int
    name: str = ""
    protocol: str = "TCP"

    def __str__(self) -> str:
        named = f" ({self.name})" if self.name else ""
        return f"{self.number}{named}"


@dataclass(frozen=True, slots=True)
class Workload:
    """A pod template (or a pod): what a selector can select and what its pods run as."""

    kind: str
    """Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, or Gateway for
    the deployment Istio makes for a Gateway API `Gateway` of class istio."""
    namespace: str
    name: str
    pod_labels: Labels
    service_account: str
    """`default` when the pod spec names none, as Kubernetes runs it."""
    ports: tuple[ContainerPort, ...]
    span: Span
    """The object's `metadata.name`."""
    labels_span: Span
    account_span: Span
    """`serviceAccountName`, or the pod spec that names none."""
    ports_span: Span
    account_given: bool = True
    """False when the pod spec names no account (and so runs as `default`)."""

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.pod_labels)

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    target_port: int | str | None
    """A number, a container port's name, or None (the same as `port`)."""
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class KubeService:
    """A Kubernetes Service: the host name callers address, and the pods it sends to."""

    namespace: str
    name: str
    selector: Labels | None
    """None: a Service without a selector (its endpoints are managed by hand)."""
    ports: tuple[ServicePort, ...]
    span: Span
    selector_span: Span


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    namespace: str
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Gateway:
    """A Gateway API `Gateway`; one of class istio is deployed by Istio as `<name>-istio`
    running as the account `<name>-istio` (unless its annotations
    `gateway.istio.io/name-override` and `gateway.istio.io/service-account` say otherwise)."""

    namespace: str
    name: str
    class_name: str
    ports: tuple[int, ...]
    span: Span
    name_override: str = ""
    account_override: str = ""

    @property
    def deployed_by_istio(self) -> bool:
        return self.class_name == ISTIO_GATEWAY_CLASS

    @property
    def deployment(self) -> str:
        return self.name_override or f"{self.name}-{ISTIO_GATEWAY_CLASS}"

    @property
    def service_account(self) -> str:
        return self.account_override or self.deployment

    def workload(self) -> Workload:
        """The deployment Istio makes for this Gateway: pods labelled with the gateway's
        name, running as `<name>-istio`, listening on the listeners' ports."""
        return Workload(
            kind="Gateway",
            namespace=self.namespace,
            name=self.deployment,
            pod_labels=((GATEWAY_NAME_LABEL, self.name),),
            service_account=self.service_account,
            ports=tuple(ContainerPort(self.name, port) for port in self.ports),
            span=self.span,
            labels_span=self.span,
            account_span=self.span,
            ports_span=self.span,
        )


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything the manifests (or a cluster) hold that the checks look at, indexed once
    (every service of every rule looks its pods up: a scan each time would cost services
    times workloads)."""

    workloads: tuple[Workload, ...] = ()
    services: tuple[KubeService, ...] = ()
    accounts: tuple[ServiceAccount, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _Index.of(self))

    @property
    def namespaces(self) -> frozenset[str]:
        """The namespaces the inventory describes: only these are judged, since a namespace
        it says nothing about may well be deployed from elsewhere."""
        return self._index.namespaces

    def pods(self, namespace: str) -> list[Workload]:
        """Every pod template in `namespace`, the deployments Istio makes for Gateways
        included."""
        return list(self._index.pods.get(namespace, ()))

    def selected(self, namespace: str, selector: LabelSelector) -> list[Workload]:
        index = self._index
        candidates = index.pods.get(namespace, ())
        for pair in selector.match_labels:  # the fewest pods carrying one wanted label
            carrying = index.by_label.get((namespace, *pair), ())
            if len(carrying) < len(candidates):
                candidates = carrying
        return [w for w in candidates if selector.matches(w.labels)]

    def account(self, namespace: str, name: str) -> ServiceAccount | None:
        """The ServiceAccount, including the one Istio makes for a Gateway's deployment."""
        return self._index.accounts.get((namespace, name))

    def service(self, namespace: str, name: str) -> KubeService | None:
        return self._index.services.get((namespace, name))


@dataclass(frozen=True, slots=True)
class _Index:
    namespaces: frozenset[str]
    pods: dict[str, tuple[Workload, ...]]
    by_label: dict[tuple[str, str, str], tuple[Workload, ...]]
    accounts: dict[tuple[str, str], ServiceAccount]
    services: dict[tuple[str, str], KubeService]

    @classmethod
    def of(cls, inventory: Inventory) -> _Index:
        found: set[str] = set()
        for group in (inventory.workloads, inventory.services, inventory.accounts):
            found.update(item.namespace for item in group)
        found.update(g.namespace for g in inventory.gateways)
        deployed = [g for g in inventory.gateways if g.deployed_by_istio]
        pods: dict[str, list[Workload]] = {}
        by_label: dict[tuple[str, str, str], list[Workload]] = {}
        for workload in (*inventory.workloads, *(g.workload() for g in deployed)):
            pods.setdefault(workload.namespace, []).append(workload)
            for key, value in workload.pod_labels:
                by_label.setdefault((workload.namespace, key, value), []).append(workload)
        accounts: dict[tuple[str, str], ServiceAccount] = {}
        for account in inventory.accounts:
            accounts.setdefault((account.namespace, account.name), account)
        for gateway in deployed:
            made = ServiceAccount(gateway.namespace, gateway.service_account, gateway.span)
            accounts.setdefault((made.namespace, made.name), made)
        services: dict[tuple[str, str], KubeService] = {}
        for service in inventory.services:
            services.setdefault((service.namespace, service.name), service)
        return cls(
            frozenset(found),
            {ns: tuple(found_pods) for ns, found_pods in pods.items()},
            {label: tuple(carrying) for label, carrying in by_label.items()},
            accounts,
            services,
        )
