"""Istio's service registry, ServiceEntry visibility and Sidecar egress, independent of meshc.

Written from Istio's reference pages for ``Sidecar`` and ``ServiceEntry``
(istio.io/latest/docs/reference/config/networking/sidecar/ and .../service-entry/) and the
``outboundTrafficPolicy`` of MeshConfig: a proxy knows the registry's services (Kubernetes
Services and ServiceEntry hosts) that are exported to its namespace and, when a Sidecar applies
to it, that one of the Sidecar's egress listeners imports (``namespace/dnsName``). A host it
does not know is passed through under ``ALLOW_ANY`` and sent to the black hole under
``REGISTRY_ONLY``. Objects are plain dicts; fields whose meaning the oracle does not model
raise ``NotImplementedError``, malformed input ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Caller",
    "RegistryService",
    "external_services",
    "proxy_outcome",
    "registry",
    "visible_to",
]

Outcome = Literal["known", "passthrough", "blocked"]
OutboundMode = Literal["ALLOW_ANY", "REGISTRY_ONLY"]

_EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"
_NETWORKING = frozenset({"networking.istio.io/v1", "networking.istio.io/v1beta1"})
_SERVICE_ENTRY_FIELDS = frozenset(
    {
        "hosts",
        "addresses",
        "ports",
        "location",
        "resolution",
        "endpoints",
        "exportTo",
        "workloadSelector",
        "subjectAltNames",
    }
)
_SIDECAR_FIELDS = frozenset({"workloadSelector", "egress", "ingress", "outboundTrafficPolicy"})
_SIDECAR_UNSUPPORTED = frozenset({"inboundConnectionPool"})
_LISTENER_FIELDS = frozenset({"port", "hosts", "bind", "captureMode"})


@dataclass(frozen=True)
class RegistryService:
    """One host in Istio's registry: a Kubernetes Service (``kind == "Service"``, host
    ``<name>.<namespace>.svc.<domain>``) or one host of a ServiceEntry, declared in
    ``namespace``. ``ports`` maps each port number to its protocol; ``export_to`` is the raw
    exportTo list."""

    host: str
    namespace: str
    ports: Mapping[int, str]
    export_to: tuple[str, ...]
    kind: Literal["Service", "ServiceEntry"]
    external: bool


@dataclass(frozen=True)
class Caller:
    """The workload whose proxy makes the outbound call."""

    namespace: str
    labels: Mapping[str, str]


def registry(
    objects: Iterable[Mapping[str, Any]],
    *,
    cluster_domain: str = "cluster.local",
    default_export_to: Sequence[str] = ("*",),
) -> list[RegistryService]:
    """Every registry entry the objects declare: each Kubernetes Service (its exportTo from the
    ``networking.istio.io/exportTo`` annotation, comma-separated) and each host of each
    ServiceEntry (``location`` defaults to MESH_EXTERNAL). Absent exportTo takes the mesh's
    ``defaultServiceExportTo`` (``*`` unless configured)."""
    entries: list[RegistryService] = []
    for obj in objects:
        if obj.get("kind") == "Service" and obj.get("apiVersion") == "v1":
            entries.append(_kubernetes_service(obj, cluster_domain, default_export_to))
        elif obj.get("kind") == "ServiceEntry":
            entries.extend(_service_entry(obj, default_export_to))
    return entries


def external_services(
    objects: Iterable[Mapping[str, Any]], namespace: str
) -> list[RegistryService]:
    """The ServiceEntry hosts outside the mesh (MESH_EXTERNAL) that are exported to
    ``namespace``: what a proxy there may learn of as an external destination."""
    return [
        entry
        for entry in registry(objects)
        if entry.kind == "ServiceEntry" and entry.external and visible_to(entry, namespace)
    ]


def visible_to(entry: RegistryService, namespace: str) -> bool:
    """``exportTo``: ``*`` every namespace, ``.`` the declaring namespace, ``~`` none, else
    the named namespaces."""
    for target in entry.export_to:
        if target == "*" or target == namespace:
            return True
        if target == "." and entry.namespace == namespace:
            return True
    return False


def proxy_outcome(
    objects: Iterable[Mapping[str, Any]],
    caller: Caller,
    host: str,
    port: int,
    *,
    root_namespace: str = "istio-system",
    mesh_outbound: OutboundMode = "ALLOW_ANY",
    cluster_domain: str = "cluster.local",
) -> Outcome:
    """What the caller's proxy does with a connection to ``host:port`` (``host`` as the
    application dials it, fully qualified): ``known`` when a registry entry for that host and
    port is visible to the caller and imported by the Sidecar that applies to it; otherwise
    ``passthrough`` or ``blocked`` by the outbound traffic policy (the Sidecar's, else the
    mesh's)."""
    rendered = list(objects)
    sidecar = applicable_sidecar(rendered, caller, root_namespace=root_namespace)
    _validate(sidecar)
    for entry in registry(rendered, cluster_domain=cluster_domain):
        if (
            port in entry.ports
            and _host_matches(entry.host, host)
            and visible_to(entry, caller.namespace)
            and _imported(sidecar, entry, port)
        ):
            return "known"
    mode = _outbound_mode(sidecar) or mesh_outbound
    return "blocked" if mode == "REGISTRY_ONLY" else "passthrough"


def applicable_sidecar(
    objects: Iterable[Mapping[str, Any]], caller: Caller, *, root_namespace: str
) -> Mapping[str, Any] | None:
    """The Sidecar that configures the caller's proxy: one in its namespace whose
    workloadSelector selects it, else its namespace's selector-less one, else the root
    namespace's selector-less one, else none. Two candidates at the same level are undefined
    behaviour in Istio, reported as ValueError."""
    sidecars = [obj for obj in objects if _is_sidecar(obj)]
    local = [s for s in sidecars if _namespace(s) == caller.namespace]
    selecting = [s for s in local if _selector(s) and _subset(_selector(s), caller.labels)]
    namespace_wide = [s for s in local if not _selector(s)]
    root_wide = [s for s in sidecars if _namespace(s) == root_namespace and not _selector(s)]
    for level, candidates in (
        ("selecting the workload", selecting),
        ("without workloadSelector", namespace_wide),
        ("in the root namespace", root_wide),
    ):
        if len(candidates) > 1:
            names = sorted(_name(s) for s in candidates)
            raise ValueError(f"several Sidecars {level} apply to the caller: {names}")
        if candidates:
            return candidates[0]
    return None


def _validate(sidecar: Mapping[str, Any] | None) -> None:
    """Check the whole applicable Sidecar up front, so a malformed field raises whichever
    host is asked about."""
    if sidecar is None:
        return
    _outbound_mode(sidecar)
    for listener in _sidecar_spec(sidecar).get("egress") or []:
        _check_fields(listener, _LISTENER_FIELDS, frozenset(), "egress listener")
        for pattern in listener.get("hosts") or []:
            if "/" not in pattern:
                raise ValueError(f"egress host {pattern!r} is not namespace/dnsName")


def _imported(sidecar: Mapping[str, Any] | None, entry: RegistryService, port: int) -> bool:
    """No Sidecar, or one without egress, imports everything visible; otherwise some egress
    listener (of this port, when it names one) must list a matching ``namespace/dnsName``."""
    if sidecar is None:
        return True
    listeners: Sequence[Mapping[str, Any]] | None = _sidecar_spec(sidecar).get("egress")
    if not listeners:
        return True
    return any(
        _listener_imports(listener, _namespace(sidecar), entry, port) for listener in listeners
    )


def _listener_imports(
    listener: Mapping[str, Any], sidecar_namespace: str, entry: RegistryService, port: int
) -> bool:
    _check_fields(listener, _LISTENER_FIELDS, frozenset(), "egress listener")
    if listener.get("bind") or listener.get("captureMode") not in (None, "DEFAULT", "IPTABLES"):
        raise NotImplementedError("egress listener bind/captureMode")
    listener_port: Mapping[str, Any] | None = listener.get("port")
    if listener_port is not None and int(listener_port.get("number", 0)) != port:
        return False
    hosts: Sequence[str] = listener.get("hosts") or []
    if not hosts:
        raise ValueError("an egress listener needs hosts")
    return any(_egress_host_matches(h, sidecar_namespace, entry) for h in hosts)


def _egress_host_matches(pattern: str, sidecar_namespace: str, entry: RegistryService) -> bool:
    """``namespace/dnsName``: namespace ``*`` any, ``.`` the Sidecar's own, ``~`` none;
    dnsName ``*`` every host of the namespace, ``*.suffix`` hosts under the suffix, else the
    exact FQDN."""
    if "/" not in pattern:
        raise ValueError(f"egress host {pattern!r} is not namespace/dnsName")
    namespace, dns_name = pattern.split("/", 1)
    if namespace == "~":
        return False
    wanted = sidecar_namespace if namespace == "." else namespace
    if wanted != "*" and wanted != entry.namespace:
        return False
    return _host_matches(dns_name, entry.host)


def _host_matches(pattern: str, host: str) -> bool:
    """``*`` matches any host, ``*.example.com`` any host under ``example.com`` (also a wildcard
    host wholly inside it), anything else the same name."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and host != suffix[1:]
    return pattern == host


def _outbound_mode(sidecar: Mapping[str, Any] | None) -> OutboundMode | None:
    if sidecar is None:
        return None
    policy: Mapping[str, Any] = _sidecar_spec(sidecar).get("outboundTrafficPolicy") or {}
    mode = policy.get("mode")
    if mode is None:
        return None
    if mode not in ("ALLOW_ANY", "REGISTRY_ONLY"):
        raise ValueError(f"unknown outboundTrafficPolicy mode {mode!r}")
    return "REGISTRY_ONLY" if mode == "REGISTRY_ONLY" else "ALLOW_ANY"


def _kubernetes_service(
    obj: Mapping[str, Any], cluster_domain: str, default_export_to: Sequence[str]
) -> RegistryService:
    metadata: Mapping[str, Any] = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "default")
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    export = annotations.get(_EXPORT_TO_ANNOTATION)
    spec: Mapping[str, Any] = obj.get("spec") or {}
    ports = {
        int(p["port"]): str(p.get("appProtocol") or p.get("name") or "tcp")
        for p in spec.get("ports") or []
    }
    return RegistryService(
        host=f"{metadata['name']}.{namespace}.svc.{cluster_domain}",
        namespace=namespace,
        ports=ports,
        export_to=tuple(e.strip() for e in export.split(","))
        if export
        else tuple(default_export_to),
        kind="Service",
        external=False,
    )


def _service_entry(
    obj: Mapping[str, Any], default_export_to: Sequence[str]
) -> list[RegistryService]:
    if obj.get("apiVersion") not in _NETWORKING:
        raise ValueError(f"unsupported ServiceEntry apiVersion {obj.get('apiVersion')!r}")
    namespace = _namespace(obj)
    spec: Mapping[str, Any] = obj.get("spec") or {}
    _check_fields(spec, _SERVICE_ENTRY_FIELDS, frozenset(), "ServiceEntry spec")
    hosts: Sequence[str] = spec.get("hosts") or []
    if not hosts:
        raise ValueError(f"ServiceEntry {_name(obj)!r} has no hosts")
    location = spec.get("location") or "MESH_EXTERNAL"
    if location not in ("MESH_EXTERNAL", "MESH_INTERNAL"):
        raise ValueError(f"unknown ServiceEntry location {location!r}")
    ports = {int(p["number"]): str(p.get("protocol") or "TCP") for p in spec.get("ports") or []}
    export_to = tuple(spec.get("exportTo") or default_export_to)
    return [
        RegistryService(
            host=str(host),
            namespace=namespace,
            ports=ports,
            export_to=export_to,
            kind="ServiceEntry",
            external=location == "MESH_EXTERNAL",
        )
        for host in hosts
    ]


def _is_sidecar(obj: Mapping[str, Any]) -> bool:
    if obj.get("kind") != "Sidecar":
        return False
    if obj.get("apiVersion") not in _NETWORKING:
        raise ValueError(f"unsupported Sidecar apiVersion {obj.get('apiVersion')!r}")
    return True


def _sidecar_spec(sidecar: Mapping[str, Any]) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = sidecar.get("spec") or {}
    _check_fields(spec, _SIDECAR_FIELDS, _SIDECAR_UNSUPPORTED, "Sidecar spec")
    return spec


def _selector(sidecar: Mapping[str, Any]) -> Mapping[str, str]:
    selector: Mapping[str, Any] = _sidecar_spec(sidecar).get("workloadSelector") or {}
    labels: Mapping[str, str] = selector.get("labels") or {}
    return labels


def _subset(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _name(obj: Mapping[str, Any]) -> str:
    metadata: Mapping[str, Any] = obj.get("metadata") or {}
    return str(metadata.get("name"))


def _namespace(obj: Mapping[str, Any]) -> str:
    metadata: Mapping[str, Any] = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    if not namespace:
        raise ValueError(f"{obj.get('kind')} {_name(obj)!r} has no namespace")
    return str(namespace)


def _check_fields(
    obj: Mapping[str, Any], known: frozenset[str], unsupported: frozenset[str], where: str
) -> None:
    for name, value in obj.items():
        if name in unsupported:
            if value:
                raise NotImplementedError(f"{where} field {name!r} is not modelled")
        elif name not in known:
            raise ValueError(f"unknown {where} field {name!r}")
