"""Mesh (`networkPolicy.defaultDeny`) → one NetworkPolicy per namespace with services.

It selects every pod of the namespace for ingress and egress, so anything no other
NetworkPolicy allows is dropped — pods meshc does not know included — and allows what
every pod of the mesh needs:
- DNS: egress to kube-dns (namespace `kube-system`, pods `k8s-app: kube-dns`) on 53/UDP
  and 53/TCP;
- istiod: egress to the root namespace's `app: istiod` pods on 15012, the port sidecars
  fetch their configuration (xDS) and certificates (CA) on — istiod's other ports serve
  the API server's webhooks (15017), plaintext xDS (15010) and its own metrics (15014);
- metrics: ingress from the monitoring namespace on Envoy's metrics ports.
The calls of each service are allowed by its own NetworkPolicy (`network_policy`).
"""

from __future__ import annotations

from compiler.lower.istio.common import (
    ENVOY_METRICS_PORTS,
    K8S_NETWORKING,
    LowerContext,
    Obj,
    new_object,
)

DEFAULT_DENY = "meshc-default-deny"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
DNS_NAMESPACE = "kube-system"
DNS_PODS = {"k8s-app": "kube-dns"}
ISTIOD_PODS = {"app": "istiod"}
ISTIOD_XDS_PORT = 15012


def namespace_default_deny(ctx: LowerContext, namespace: str) -> Obj:
    settings = ctx.model.settings
    obj = new_object(
        ctx,
        api_version=K8S_NETWORKING,
        kind="NetworkPolicy",
        name=DEFAULT_DENY,
        namespace=namespace,
        source=ctx.mesh_source,
    )
    obj["spec"] = {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [{"namespaceSelector": _namespace(settings.monitoring_namespace)}],
                "ports": [{"port": port, "protocol": "TCP"} for port in ENVOY_METRICS_PORTS],
            }
        ],
        "egress": [
            {
                "to": [_pods(DNS_PODS, DNS_NAMESPACE)],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            },
            {
                "to": [_pods(ISTIOD_PODS, settings.root_namespace)],
                "ports": [{"port": ISTIOD_XDS_PORT, "protocol": "TCP"}],
            },
        ],
    }
    return obj


def _namespace(name: str) -> Obj:
    return {"matchLabels": {NAMESPACE_LABEL: name}}


def _pods(labels: dict[str, str], namespace: str) -> Obj:
    return {
        "podSelector": {"matchLabels": dict(labels)},
        "namespaceSelector": _namespace(namespace),
    }
