"""Objects meshc would write that someone else already owns: conflicts, never overwritten.

- MC801: an object of the revision exists in the cluster without meshc's ownership label
  (`app.kubernetes.io/managed-by: meshc`) — created by hand, by Helm, by another tool;
- MC802: another VirtualService (not meshc's) routes one of the hosts a VirtualService of
  the revision routes, for the same gateways (`mesh` when none is named): Istio would
  merge or pick between them unpredictably.

Both are read with one list per kind and namespace, not one read per object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from compiler.api import Compilation
from compiler.diagnostics import Diagnostic, Related, Span
from reconciler.kube.client import ApiRefusal, Cluster
from reconciler.kube.located import intent_span

MANAGED_BY = "app.kubernetes.io/managed-by"
NOT_OWNED = "MC801"
HOST_TAKEN = "MC802"
VIRTUAL_SERVICE = ("networking.istio.io/v1", "VirtualService")
SKIPPED_KINDS = frozenset({"Namespace"})


def ours(obj: dict[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) == "meshc"


def ownership_findings(
    cluster: Cluster, compilation: Compilation, objects: Iterable[dict[str, Any]]
) -> list[Diagnostic]:
    desired = [obj for obj in objects if obj["kind"] not in SKIPPED_KINDS]
    found = _not_owned(cluster, compilation, desired)
    routes = [obj for obj in desired if (obj["apiVersion"], obj["kind"]) == VIRTUAL_SERVICE]
    if routes:
        found.extend(_hosts_taken(cluster, compilation, routes))
    return found


def _not_owned(
    cluster: Cluster, compilation: Compilation, desired: list[dict[str, Any]]
) -> list[Diagnostic]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for obj in desired:
        key = (obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace", ""))
        groups.setdefault(key, []).append(obj)
    found = []
    for (api_version, kind, namespace), wanted in sorted(groups.items()):
        try:
            live = cluster.list(api_version, kind, namespace, "")
        except ApiRefusal as refusal:
            if refusal.status == 404:
                continue  # no such kind (MC800 says so) or no such namespace (the apply does)
            raise
        by_name = {item["metadata"]["name"]: item for item in live}
        for obj in wanted:
            there = by_name.get(obj["metadata"]["name"])
            if there is None or ours(there):
                continue
            where = f"{kind} {namespace + '/' if namespace else ''}{obj['metadata']['name']}"
            found.append(
                Diagnostic(
                    NOT_OWNED,
                    intent_span(compilation, obj),
                    f"{where} already exists in the cluster and is not meshc's (no "
                    f"{MANAGED_BY}: meshc label{_managers(there)}): meshc will not overwrite it",
                    "delete it or label it as meshc's if meshc should own it, or rename the intent",
                    related=(
                        Related(
                            Span(f"cluster:{kind}/{namespace}/{obj['metadata']['name']}"),
                            f"the live {where}",
                        ),
                    ),
                )
            )
    return found


def _managers(live: dict[str, Any]) -> str:
    managers = sorted({str(e.get("manager")) for e in live["metadata"].get("managedFields") or []})
    return f"; written by {', '.join(managers)}" if managers else ""


def _hosts_taken(
    cluster: Cluster, compilation: Compilation, routes: list[dict[str, Any]]
) -> list[Diagnostic]:
    domain = compilation.model.settings.cluster_domain
    others: dict[tuple[str, str], list[str]] = {}
    for item in cluster.list(*VIRTUAL_SERVICE, "", ""):
        if ours(item):
            continue
        namespace = item["metadata"].get("namespace", "")
        name = f"{namespace}/{item['metadata']['name']}"
        spec = item.get("spec") or {}
        for host in spec.get("hosts") or []:
            for gateway in _gateways(spec, namespace):
                others.setdefault((fqdn(str(host), namespace, domain), gateway), []).append(name)
    found = []
    for obj in routes:
        namespace = obj["metadata"].get("namespace", "")
        spec = obj.get("spec") or {}
        taken = sorted(
            {
                (host, other)
                for host in (fqdn(str(h), namespace, domain) for h in spec.get("hosts") or [])
                for gateway in _gateways(spec, namespace)
                for other in others.get((host, gateway), [])
            }
        )
        for host, other in taken:
            found.append(
                Diagnostic(
                    HOST_TAKEN,
                    intent_span(compilation, obj),
                    f"VirtualService {other} (not meshc's) already routes {host}; meshc's "
                    f"VirtualService {namespace}/{obj['metadata']['name']} for the same host "
                    "would compete with it",
                    f"delete VirtualService {other}, or let meshc own its routes",
                    related=(Related(Span(f"cluster:VirtualService/{other}"), f"routes {host}"),),
                )
            )
    return found


def _gateways(spec: dict[str, Any], namespace: str) -> list[str]:
    """The gateways a VirtualService binds to, as `namespace/name` (`mesh` for sidecars)."""
    named = spec.get("gateways") or ["mesh"]
    return [g if g == "mesh" or "/" in g else f"{namespace}/{g}" for g in map(str, named)]


def fqdn(host: str, namespace: str, domain: str) -> str:
    """A VirtualService host as Istio resolves a short name: relative to its namespace."""
    if "*" in host or host.endswith(f".{domain}"):
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.svc.{domain}"
    if len(parts) == 2:
        return f"{host}.svc.{domain}"
    if parts[-1] == "svc":
        return f"{host}.{domain}"
    return host
