"""Service → Sidecar: each workload's proxy only learns the hosts its service calls.

`egress.hosts` = every declared `calls:` target as `<namespace>/<FQDN>` plus
`<rootNamespace>/*` (the mesh's shared config). This is what keeps Envoy's memory flat in
large meshes: a proxy no longer receives every service's clusters and routes.
"""

from __future__ import annotations

from compiler.lower.istio.common import NETWORKING, LowerContext, Obj, host, new_object
from compiler.model.mesh import ServiceView


def egress_hosts(ctx: LowerContext, view: ServiceView) -> list[str]:
    hosts = {f"{callee.namespace}/{host(ctx, callee)}" for callee in view.calls}
    hosts.add(f"{ctx.model.settings.root_namespace}/*")
    return sorted(hosts)


def sidecar(ctx: LowerContext, view: ServiceView) -> Obj:
    obj = new_object(
        ctx,
        api_version=NETWORKING,
        kind="Sidecar",
        name=view.key.name,
        namespace=view.key.namespace,
        source=view.intent.ref,
    )
    obj["spec"] = {
        "workloadSelector": {"labels": dict(sorted(view.selector.items()))},
        "egress": [{"hosts": egress_hosts(ctx, view)}],
    }
    return obj
