"""The kinds the Istio backend emits (tests/kube/test_deploy.py derives them from the
backend's code and checks this list and deploy/'s RBAC against it)."""

from __future__ import annotations

EMITTED_KINDS = (
    ("v1", "Service"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.istio.io/v1", "DestinationRule"),
    ("networking.istio.io/v1", "ServiceEntry"),
    ("networking.istio.io/v1", "Sidecar"),
    ("networking.istio.io/v1", "VirtualService"),
    ("security.istio.io/v1", "AuthorizationPolicy"),
    ("security.istio.io/v1", "PeerAuthentication"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
)
