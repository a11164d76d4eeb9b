"""Service → Sidecar: each workload's proxy only learns the hosts its service calls.

`egress.hosts` = every declared `calls:` target as `<namespace>/<FQDN>` (an External: each
of its hosts, from the External's namespace, where its ServiceEntry lives) plus
`<rootNamespace>/*` (the mesh's shared config). This is what keeps Envoy's memory flat in
large meshes: a proxy no longer receives every service's clusters and routes. With the
Mesh's `outboundTrafficPolicy`, every Sidecar also sets the proxy's outbound mode (a
Sidecar's mode overrides the mesh config's for the workloads it selects), so under
`REGISTRY_ONLY` a host that neither a Service nor an External declares is refused.
"""

from __future__ import annotations

from compiler.lower.istio.common import NETWORKING, LowerContext, Obj, host, new_object
from compiler.model.mesh import ServiceView


def egress_hosts(ctx: LowerContext, view: ServiceView) -> list[str]:
    hosts = {f"{ctx.model.settings.root_namespace}/*"}
    for callee in view.calls:
        is_service = ctx.model.services.get(callee) is not None
        external = None if is_service else ctx.model.externals.get(callee)
        if external is None:
            hosts.add(f"{callee.namespace}/{host(ctx, callee)}")
        else:
            hosts.update(f"{callee.namespace}/{name}" for name in external.spec.hosts)
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
    spec: Obj = {
        "workloadSelector": {"labels": dict(sorted(view.selector.items()))},
        "egress": [{"hosts": egress_hosts(ctx, view)}],
    }
    mode = ctx.model.settings.outbound_traffic_policy
    if mode is not None:
        spec["outboundTrafficPolicy"] = {"mode": mode}
    obj["spec"] = spec
    return obj
