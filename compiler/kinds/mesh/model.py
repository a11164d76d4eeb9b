"""Mesh: the one mesh-wide settings document of a policy root."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compiler.kinds.common import Duration, IntentModel, Labels, Metadata, Name, Ref, Timestamp


class MtlsException(IntentModel):
    """A workload that may accept plaintext until a date (a migration, never a steady state)."""

    service: Ref
    until: Timestamp
    reason: str = Field(min_length=1)


class Mtls(IntentModel):
    mode: Literal["strict", "permissive"] = "strict"
    until: Timestamp | None = Field(
        default=None, description="required with mode: permissive; the exception ends then"
    )
    exceptions: list[MtlsException] = Field(default_factory=list)


class TrustAnchor(IntentModel):
    """A root certificate the mesh trusts, named by its SHA-256 fingerprint or its public PEM."""

    name: Name
    fingerprint: str | None = Field(
        default=None, pattern=r"^sha256:([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$"
    )
    pem: str | None = Field(default=None, description="public certificate only, never a key")

    @model_validator(mode="after")
    def _one_form(self) -> TrustAnchor:
        if (self.fingerprint is None) == (self.pem is None):
            raise ValueError("give exactly one of fingerprint or pem")
        return self


class CertificateAuthority(IntentModel):
    """The public side of the CA; the private keys live in the reconciler's key store."""

    anchors: list[TrustAnchor] = Field(min_length=1)
    issuer: Name = Field(
        description="name of the anchor whose intermediate issues workload certificates"
    )
    root_ttl: Duration = Field(default="87600h", alias="rootTTL")
    intermediate_ttl: Duration = Field(default="8760h", alias="intermediateTTL")
    workload_ttl: Duration = Field(default="24h", alias="workloadTTL")
    renew_before: Duration = "720h"


class IngressGateway(IntentModel):
    namespace: Name = "istio-system"
    service_account: Name = "istio-ingressgateway-service-account"
    selector: Labels = Field(default_factory=lambda: {"istio": "ingressgateway"})


class NetworkPolicySettings(IntentModel):
    enabled: bool = True


class MeshSpec(IntentModel):
    trust_domain: str = Field(default="cluster.local", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    cluster_domain: str = Field(
        default="cluster.local", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
    )
    root_namespace: Name = "istio-system"
    mtls: Mtls = Field(default_factory=Mtls)
    default_action: Literal["deny", "allow"] = "deny"
    ca: CertificateAuthority | None = None
    network_policy: NetworkPolicySettings = Field(default_factory=NetworkPolicySettings)
    monitoring_namespace: Name = "monitoring"
    ingress_gateway: IngressGateway = Field(default_factory=IngressGateway)
    istio_version: str = Field(default="1.22", pattern=r"^1\.(2[2-9]|[3-9][0-9])$")
    retry_budget: int = Field(
        default=10,
        ge=1,
        description="most request attempts one call may fan out to along a call chain",
    )


class MeshDocument(IntentModel):
    api_version: Literal["meshc/v1"]
    kind: Literal["Mesh"]
    metadata: Metadata
    spec: MeshSpec = Field(default_factory=MeshSpec)
