"""Kubernetes manifests to workload objects, every one located, nothing ever raised.

One file (or `helm template`/`kustomize build` output) at a time: each document of a kind
the checks look at becomes a plain object (`compiler.workloads.objects`); other kinds are
skipped and named in a note; a malformed document is a located MC701 finding and is left
out rather than guessed at. Kubernetes' own defaults apply: an object without
`metadata.namespace` is in the default namespace (as `kubectl apply` would place it),
and a pod spec without `serviceAccountName` runs as `default`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.lint.registry import loader_rule
from compiler.load.yamlnodes import Path, Positions, parse_source
from compiler.workloads.objects import (
    ContainerPort,
    Gateway,
    Inventory,
    KubeService,
    Labels,
    LabelSelector,
    Requirement,
    ServiceAccount,
    ServicePort,
    Workload,
    labels_of,
    show_labels,
)

CODE = "MC701"
loader_rule(
    CODE,
    "manifest-unreadable",
    Severity.ERROR,
    """A workload manifest given to `--workloads` cannot be read as Kubernetes objects.

    **What it does.** Reports, where it is, a manifest that is not YAML, a document that is
    not a mapping, and an object of a kind meshc reads (a workload, Service,
    ServiceAccount or Gateway) with a field the API server would reject: a label value that
    is a number, a port that is not one, a controller whose selector misses its own pods.

    **Why is this bad.** The object is left out, so the intents are checked against
    manifests that are not the ones you deploy.

    **Example.** `labels: {app: cart, version: 1.0}` (a number).

    **Use instead.** `labels: {app: cart, version: "1.0"}`.
    """,
)
_TEMPLATE: dict[str, Path] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
"""Where each controller keeps its pod template."""
_GROUPS: dict[str, frozenset[str]] = {
    "Pod": frozenset({""}),
    "Service": frozenset({""}),
    "ServiceAccount": frozenset({""}),
    "Deployment": frozenset({"apps", "extensions"}),
    "StatefulSet": frozenset({"apps"}),
    "DaemonSet": frozenset({"apps", "extensions"}),
    "ReplicaSet": frozenset({"apps", "extensions"}),
    "Job": frozenset({"batch"}),
    "CronJob": frozenset({"batch"}),
    "Gateway": frozenset({"gateway.networking.k8s.io"}),
}
"""The API groups of the kinds read (`Service` of `serving.knative.dev` is another kind)."""
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
MAX_NAMED_SKIPS = 6


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """What one manifest file holds: its objects, its problems, the documents skipped."""

    file: str
    inventory: Inventory
    problems: tuple[Diagnostic, ...] = ()
    skipped: tuple[str, ...] = ()

    def note(self) -> str | None:
        """One note naming the skipped documents (a chart renders many kinds)."""
        if not self.skipped:
            return None
        named = list(self.skipped[:MAX_NAMED_SKIPS])
        if len(self.skipped) > MAX_NAMED_SKIPS:
            named.append(f"and {len(self.skipped) - MAX_NAMED_SKIPS} more")
        return (
            f"{self.file}: skipped {', '.join(named)} (--workloads reads workloads, Services, "
            "ServiceAccounts and Gateway API Gateways)"
        )


def read_manifest(file: str, raw: bytes, *, default_namespace: str) -> ManifestFile:
    """Every object of one manifest file; any input gives a result, never an exception."""
    try:
        return _read_manifest(file, raw, default_namespace)
    except Exception as exc:  # a reader bug must be a located finding, not a traceback
        problem = Diagnostic(
            CODE,
            Span(file),
            f"internal error while reading this manifest ({type(exc).__name__})",
            "please report this input to the meshc maintainers",
        )
        return ManifestFile(file, Inventory(), (problem,))


def _read_manifest(file: str, raw: bytes, default_namespace: str) -> ManifestFile:
    parsed = parse_source(file, raw)
    builder = _Builder(file, default_namespace)
    for problem in parsed.problems:
        builder.problems.append(Diagnostic(CODE, problem.span, problem.message, problem.hint))
    if not parsed.documents and not parsed.problems:
        builder.skipped.append("a file with no YAML documents")
    for doc in parsed.documents:
        builder.document(doc.data, doc.positions, ())
    return ManifestFile(
        file,
        Inventory(
            tuple(builder.workloads),
            tuple(builder.services),
            tuple(builder.accounts),
            tuple(builder.gateways),
        ),
        tuple(builder.problems),
        tuple(builder.skipped),
    )


class _Invalid(Exception):
    """A document too malformed to read further; its finding is already recorded."""


@dataclass(slots=True)
class _Builder:
    file: str
    default_namespace: str
    workloads: list[Workload] = field(default_factory=list)
    services: list[KubeService] = field(default_factory=list)
    accounts: list[ServiceAccount] = field(default_factory=list)
    gateways: list[Gateway] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def document(self, data: Any, positions: Positions, at: Path) -> None:
        reader = _Reader(positions, at, self.problems)
        if not isinstance(data, dict):
            shape = "a list" if isinstance(data, list) else "a scalar"
            reader.problem((), f"document is {shape}; expected a Kubernetes object")
            return
        api_version, kind = data.get("apiVersion"), data.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            self.skipped.append(_describe(data))
            return
        if kind.endswith("List") and isinstance(data.get("items"), list) and not at:
            for index, item in enumerate(data["items"]):
                self.document(item, positions, ("items", index))
            return
        group = api_version.rpartition("/")[0]
        if group not in _GROUPS.get(kind, frozenset()):
            self.skipped.append(_describe(data))
            return
        with contextlib.suppress(_Invalid):  # its finding is recorded
            self._object(kind, group, data, reader)

    def _object(self, kind: str, group: str, data: dict[str, Any], reader: _Reader) -> None:
        name, namespace = reader.identity(data, kind, self.default_namespace)
        if kind == "ServiceAccount":
            self.accounts.append(ServiceAccount(namespace, name, reader.span("metadata", "name")))
        elif kind == "Service":
            self.services.append(_service(data, namespace, name, reader))
        elif kind == "Gateway":
            self.gateways.append(_gateway(data, namespace, name, reader))
        else:
            self.workloads.append(_workload(kind, group, data, namespace, name, reader))


@dataclass(slots=True)
class _Reader:
    """Typed reads of one document's fields; a wrong type is a located finding."""

    positions: Positions
    at: Path
    problems: list[Diagnostic]

    def span(self, *path: str | int) -> Span:
        return self.positions.value((*self.at, *path))

    def key_span(self, *path: str | int) -> Span:
        """The key naming `path` (a block mapping's value starts at its first key)."""
        return self.positions.key((*self.at, *path))

    def problem(self, path: Path, message: str, hint: str = "") -> None:
        hint = hint or "fix the manifest: the API server would reject it"
        self.problems.append(Diagnostic(CODE, self.span(*path), message, hint))

    def get(self, data: Any, path: Path) -> Any:
        for key in path:
            if isinstance(key, int):
                if not isinstance(data, list) or key >= len(data):
                    return None
                data = data[key]
            elif isinstance(data, dict):
                data = data.get(key)
            else:
                return None
        return data

    def mapping(
        self, data: Any, path: Path, what: str, *, required: bool = False
    ) -> dict[str, Any]:
        value = self.get(data, path)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            found = "missing" if value is None else f"{_shape(value)}, not a mapping"
            self.problem(path, f"{what} ({dotted(path)}) is {found}")
            raise _Invalid
        return value

    def items(self, data: Any, path: Path, what: str) -> list[Any]:
        value = self.get(data, path)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, f"{what} ({dotted(path)}) must be a list")
            raise _Invalid
        return value

    def text(self, data: Any, path: Path, what: str) -> str | None:
        value = self.get(data, path)
        if value is None or isinstance(value, str):
            return value
        scalar = not isinstance(value, list | dict)
        self.problem(
            path,
            f"{what} must be a string, not {_shape(value)}",
            "quote it" if scalar else "write a single string",
        )
        raise _Invalid

    def identity(self, data: dict[str, Any], kind: str, default_namespace: str) -> tuple[str, str]:
        self.mapping(data, ("metadata",), f"{kind} metadata", required=True)
        name = self.text(data, ("metadata", "name"), f"{kind} metadata.name")
        if name is None:
            name = self.text(data, ("metadata", "generateName"), f"{kind} metadata.generateName")
            if name is None:
                self.problem(("metadata",), f"{kind} has no metadata.name", "name the object")
                raise _Invalid
            name += "*"
        namespace = self.text(data, ("metadata", "namespace"), f"{kind} {name}: namespace")
        return name, namespace or default_namespace

    def labels(self, data: Any, path: Path, what: str) -> Labels:
        found = self.mapping(data, path, what)
        out: dict[str, str] = {}
        for key, value in found.items():
            if not isinstance(value, str):
                self.problem(
                    (*path, key),
                    f"{what}: the value of {key!r} must be a string, not {_shape(value)} "
                    "(Kubernetes rejects it)",
                    f'quote it: {key}: "{_scalar_text(value)}"',
                )
                raise _Invalid
            out[str(key)] = value
        return labels_of(out)

    def port_number(self, data: Any, path: Path, what: str) -> int:
        value = self.get(data, path)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            found = "missing" if value is None else repr(value)
            self.problem(path, f"{what} must be a port number (1-65535), not {found}")
            raise _Invalid
        return value

    def selector(self, data: Any, path: Path, what: str) -> LabelSelector:
        match_labels = self.labels(data, (*path, "matchLabels"), f"{what} matchLabels")
        requirements: list[Requirement] = []
        expressions = self.items(data, (*path, "matchExpressions"), f"{what} matchExpressions")
        for index in range(len(expressions)):
            where = (*path, "matchExpressions", index)
            key = self.text(data, (*where, "key"), f"{what} matchExpressions key")
            operator = self.text(data, (*where, "operator"), f"{what} matchExpressions operator")
            if key is None or operator not in _OPERATORS:
                self.problem(
                    where,
                    f"{what}: a matchExpressions entry needs a key and an operator",
                    "operator is one of " + ", ".join(_OPERATORS),
                )
                raise _Invalid
            values = self.items(data, (*where, "values"), f"{what} matchExpressions values")
            if not all(isinstance(value, str) for value in values):
                self.problem((*where, "values"), f"{what}: values must be strings", "quote them")
                raise _Invalid
            requirements.append(Requirement(key, operator, tuple(values)))  # type: ignore[arg-type]
        return LabelSelector(match_labels, tuple(requirements))


def _workload(
    kind: str, group: str, data: dict[str, Any], namespace: str, name: str, reader: _Reader
) -> Workload:
    template: Path = _TEMPLATE.get(kind, ())
    what = f"{kind} {namespace}/{name}"
    if template:
        reader.mapping(data, template, f"{what}: the pod template", required=True)
    labels = reader.labels(data, (*template, "metadata", "labels"), f"{what}: pod labels")
    pod = (*template, "spec")
    reader.mapping(data, pod, f"{what}: the pod spec", required=True)
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        _check_own_selector(data, what, group, labels, reader)
    account_path = (*pod, "serviceAccountName")
    account = reader.text(data, account_path, f"{what}: serviceAccountName")
    if account is None:  # the deprecated field, still honoured
        account_path = (*pod, "serviceAccount")
        account = reader.text(data, account_path, f"{what}: serviceAccount")
    ports = _container_ports(data, pod, what, reader)
    return Workload(
        kind=kind,
        namespace=namespace,
        name=name,
        pod_labels=labels,
        service_account=account or "default",
        ports=ports,
        span=reader.span("metadata", "name"),
        labels_span=reader.span(*template, "metadata", "labels"),
        account_span=reader.span(*account_path) if account else reader.key_span(*pod),
        ports_span=reader.span(*pod, "containers"),
        account_given=account is not None,
    )


def _check_own_selector(
    data: dict[str, Any], what: str, group: str, labels: Labels, reader: _Reader
) -> None:
    """A controller must select its own pods; apps/v1 requires the selector."""
    if reader.get(data, ("spec", "selector")) is None:
        if group == "apps":
            reader.problem(("spec",), f"{what} has no spec.selector (apps/v1 requires one)")
            raise _Invalid
        return
    reader.mapping(data, ("spec", "selector"), f"{what}: spec.selector")
    selector = reader.selector(data, ("spec", "selector"), f"{what}: spec.selector")
    if not selector.matches(dict(labels)):
        reader.problem(
            ("spec", "selector"),
            f"{what}: spec.selector {selector} does not select its own pod template's labels "
            f"{show_labels(labels)}",
            "make the template's labels satisfy the selector (the API server rejects this)",
        )
        raise _Invalid


def _container_ports(
    data: dict[str, Any], pod: Path, what: str, reader: _Reader
) -> tuple[ContainerPort, ...]:
    """The ports of the containers, and of init containers that keep running (native
    sidecars, `restartPolicy: Always`)."""
    ports: list[ContainerPort] = []
    for group in ("containers", "initContainers"):
        for index, container in enumerate(reader.items(data, (*pod, group), f"{what}: {group}")):
            where = (*pod, group, index)
            reader.mapping(data, where, f"{what}: a container", required=True)
            if group == "initContainers" and container.get("restartPolicy") != "Always":
                continue
            container_name = reader.text(data, (*where, "name"), f"{what}: container name") or ""
            listed = reader.items(data, (*where, "ports"), f"{what}: ports")
            for number in range(len(listed)):
                at = (*where, "ports", number)
                reader.mapping(data, at, f"{what}: a container port", required=True)
                value = reader.port_number(data, (*at, "containerPort"), f"{what}: containerPort")
                port_name = reader.text(data, (*at, "name"), f"{what}: port name") or ""
                protocol = reader.text(data, (*at, "protocol"), f"{what}: protocol") or "TCP"
                ports.append(ContainerPort(container_name, value, port_name, protocol))
    return tuple(ports)


def _service(data: dict[str, Any], namespace: str, name: str, reader: _Reader) -> KubeService:
    what = f"Service {namespace}/{name}"
    reader.mapping(data, ("spec",), f"{what}: spec")
    selector = None
    if reader.get(data, ("spec", "selector")) is not None:
        selector = reader.labels(data, ("spec", "selector"), f"{what}: selector")
    ports: list[ServicePort] = []
    for index, _ in enumerate(reader.items(data, ("spec", "ports"), f"{what}: ports")):
        at = ("spec", "ports", index)
        reader.mapping(data, at, f"{what}: a port", required=True)
        number = reader.port_number(data, (*at, "port"), f"{what}: port")
        target = reader.get(data, (*at, "targetPort"))
        if isinstance(target, bool) or not isinstance(target, int | str | None):
            reader.problem((*at, "targetPort"), f"{what}: targetPort must be a number or a name")
            raise _Invalid
        port_name = reader.text(data, (*at, "name"), f"{what}: port name") or ""
        ports.append(ServicePort(number, target, port_name, reader.span(*at)))
    return KubeService(
        namespace,
        name,
        selector,
        tuple(ports),
        reader.span("metadata", "name"),
        reader.span("spec", "selector"),
    )


def _gateway(data: dict[str, Any], namespace: str, name: str, reader: _Reader) -> Gateway:
    what = f"Gateway {namespace}/{name}"
    class_name = reader.text(data, ("spec", "gatewayClassName"), f"{what}: gatewayClassName")
    ports: list[int] = []
    for index, _ in enumerate(reader.items(data, ("spec", "listeners"), f"{what}: listeners")):
        ports.append(reader.port_number(data, ("spec", "listeners", index, "port"), what))
    overrides = dict(reader.labels(data, ("metadata", "annotations"), f"{what}: annotations"))
    return Gateway(
        namespace,
        name,
        class_name or "",
        tuple(sorted(set(ports))),
        reader.span("metadata", "name"),
        name_override=overrides.get("gateway.istio.io/name-override", ""),
        account_override=overrides.get("gateway.istio.io/service-account", ""),
    )


def dotted(path: Path) -> str:
    """`spec.template.spec.containers[0]`, as kubectl names a field."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else f".{key}" if out else str(key)
    return out


def _describe(data: dict[str, Any]) -> str:
    kind, api_version = data.get("kind"), data.get("apiVersion")
    if not isinstance(kind, str) and not isinstance(api_version, str):
        return "a YAML mapping without apiVersion/kind"
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    named = f"/{name}" if isinstance(name, str) else ""
    return f"{kind or '?'}{named} ({api_version or 'no apiVersion'})"


def _shape(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else "a string"


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
