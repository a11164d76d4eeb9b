"""What the preflight needs in a cluster, seeded into the stand-in: Istio's CRDs (cut
down: any spec, unless a test narrows one) and bookinfo's workloads, as if deployed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.kube.apiserver import StandIn

BOOKINFO = Path(__file__).parents[1] / "workloads" / "data" / "bookinfo"
ROLLOUT_NAME_LINE = next(
    n + 2
    for n, t in enumerate(
        (BOOKINFO.parents[3] / "policies" / "reviews.yaml").read_text().splitlines(), 1
    )
    if t == "kind: Rollout"
)
ISTIO_KINDS = (
    ("networking.istio.io", "VirtualService", "virtualservices"),
    ("networking.istio.io", "DestinationRule", "destinationrules"),
    ("networking.istio.io", "ServiceEntry", "serviceentries"),
    ("networking.istio.io", "Sidecar", "sidecars"),
    ("networking.istio.io", "Gateway", "gateways"),
    ("security.istio.io", "AuthorizationPolicy", "authorizationpolicies"),
    ("security.istio.io", "PeerAuthentication", "peerauthentications"),
)


def crd(
    group: str,
    kind: str,
    plural: str,
    *,
    versions: tuple[str, ...] = ("v1",),
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    schema = spec or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": version == versions[0],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": schema, "status": {"type": "object"}},
                        }
                    },
                }
                for version in versions
            ],
        },
    }


def seed_cluster(
    stand_in: StandIn, *, skip: tuple[str, ...] = (), crds: dict[str, dict[str, Any]] | None = None
) -> None:
    """Istio's CRDs (or `crds` in their place) and bookinfo's workloads, as if deployed."""
    for group, kind, plural in ISTIO_KINDS:
        stand_in.seed((crds or {}).get(kind) or crd(group, kind, plural), manager="istioctl")
    for namespace in ("bookinfo", "istio-system"):
        stand_in.seed(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": namespace},
            }
        )
    for path in sorted(BOOKINFO.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in YAML(typ="safe").load_all(path.read_text()):
            if doc and doc["metadata"]["name"] not in skip:
                stand_in.seed(doc, manager="kubectl-client-side-apply")
    stand_in.seed(istio_gateway())


def istio_gateway() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {
            "selector": {"matchLabels": {"istio": "ingressgateway"}},
            "template": {
                "metadata": {"labels": {"istio": "ingressgateway", "app": "istio-ingressgateway"}},
                "spec": {
                    "serviceAccountName": "istio-ingressgateway-service-account",
                    "containers": [{"name": "istio-proxy", "ports": [{"containerPort": 8080}]}],
                },
            },
        },
    }
