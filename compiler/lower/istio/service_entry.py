"""External → ServiceEntry: the outside hosts made known to the callers' proxies.

`location: MESH_EXTERNAL` (no mTLS, no mesh identity at the other end), the ports with
Istio's protocol names, the resolution the External asks for (`static`: its addresses are
the endpoints; `none`, or `dns` with single IPs: its addresses are matched as destination
IPs, see `ExternalSpec.matched_addresses`), and `exportTo` only the External's own
namespace and its callers' — the least visibility that lets every declared caller reach it.
"""

from __future__ import annotations

from compiler.lower.istio.common import NETWORKING, LowerContext, Obj, new_object
from compiler.model.egress import external_callers
from compiler.model.mesh import ExternalView

PROTOCOLS = {"http": "HTTP", "https": "HTTPS", "tls": "TLS", "tcp": "TCP", "grpc": "GRPC"}
RESOLUTIONS = {"dns": "DNS", "static": "STATIC", "none": "NONE"}


def service_entry(ctx: LowerContext, external: ExternalView) -> Obj:
    spec = external.spec
    obj = new_object(
        ctx,
        api_version=NETWORKING,
        kind="ServiceEntry",
        name=external.key.name,
        namespace=external.key.namespace,
        source=external.intent.ref,
    )
    resolution = spec.effective_resolution
    namespaces = {external.key.namespace}
    namespaces.update(caller.namespace for caller in external_callers(ctx.model, external.key))
    body: Obj = {
        "hosts": list(spec.hosts),
        "location": "MESH_EXTERNAL",
        "ports": [
            {"number": port.port, "name": port.name, "protocol": PROTOCOLS[port.protocol]}
            for port in spec.ports
        ],
        "resolution": RESOLUTIONS[resolution],
        "exportTo": sorted(namespaces),
    }
    if spec.matched_addresses:
        body["addresses"] = list(spec.matched_addresses)
    if resolution == "static":
        body["endpoints"] = [{"address": address.split("/")[0]} for address in spec.addresses]
    obj["spec"] = body
    return obj
