"""Mesh: the one mesh-wide settings document of a policy root."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

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


CLASSIC_GATEWAY_DEPLOYMENT = "istio-ingressgateway"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
_CIDR = r"^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F:]+)(/[0-9]{1,3})?$"
_HOST = r"^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$"
_GATEWAY_REF = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class IngressGateway(IntentModel):
    """One ingress gateway: a classic Istio gateway deployment, or a Gateway API `Gateway`
    of class `istio` (which Istio deploys as `<name>-istio`). Unset fields take the
    defaults of the form; `MeshSpec.ingress_gateways` resolves them."""

    api: Literal["istio", "gateway-api"] = Field(
        default="istio",
        description="istio: a classic gateway deployment; gateway-api: a Gateway of class istio",
    )
    name: Name | None = Field(
        default=None,
        description="gateway-api: the Gateway resource's name (required); istio: how "
        "sources and findings name it (default: the deployment's name)",
    )
    namespace: Name = "istio-system"
    service_account: Name | None = Field(
        default=None,
        description="default: istio-ingressgateway-service-account (istio), <name>-istio "
        "(gateway-api)",
    )
    selector: Labels | None = Field(
        default=None,
        description="the gateway pods' labels; default: {istio: ingressgateway} (istio), "
        "{gateway.networking.k8s.io/gateway-name: <name>} (gateway-api)",
    )
    deployment: Name | None = Field(
        default=None,
        description="the Deployment running the gateway; default: istio-ingressgateway "
        "(istio), <name>-istio (gateway-api)",
    )
    ports: list[Annotated[int, Field(ge=1, le=65535)]] | None = Field(
        default=None,
        description="the listener ports the gateway pods accept (container ports); default: "
        "[8080, 8443] (istio), [80] (gateway-api)",
    )
    source_ranges: list[Annotated[str, Field(pattern=_CIDR)]] = Field(
        default_factory=list,
        description="CIDRs allowed to reach the listeners; empty: anywhere",
    )
    hosts: list[Annotated[str, Field(pattern=_HOST)]] = Field(
        default_factory=list, description="the hostnames the gateway serves ('*': any)"
    )
    gateway: str | None = Field(
        default=None,
        pattern=_GATEWAY_REF,
        description="istio only: the Istio Gateway resource (namespace/name) routes bind to",
    )

    @model_validator(mode="after")
    def _form(self) -> IngressGateway:
        if self.api == "gateway-api" and self.name is None:
            raise ValueError(
                "api: gateway-api needs name: the name of the Gateway resource (class istio)"
            )
        if self.api == "gateway-api" and self.gateway is not None:
            raise ValueError(
                "gateway: names a classic Istio Gateway resource; a gateway-api gateway is "
                "the Gateway resource named by name:"
            )
        for cidr in self.source_ranges:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"sourceRanges: {cidr!r} is not a CIDR") from None
        return self

    def resolved(self) -> ResolvedGateway:
        """This gateway with the defaults of its form applied."""
        if self.api == "gateway-api":
            name = self.name or ""
            return ResolvedGateway(
                name=name,
                api="gateway-api",
                namespace=self.namespace,
                service_account=self.service_account or f"{name}-istio",
                selector=_labels(self.selector or {GATEWAY_NAME_LABEL: name}),
                deployment=self.deployment or f"{name}-istio",
                ports=_ports(self.ports, (80,)),
                source_ranges=tuple(self.source_ranges),
                hosts=tuple(self.hosts),
                gateway=None,
            )
        deployment = self.deployment or CLASSIC_GATEWAY_DEPLOYMENT
        return ResolvedGateway(
            name=self.name or deployment,
            api="istio",
            namespace=self.namespace,
            service_account=self.service_account or "istio-ingressgateway-service-account",
            selector=_labels(self.selector or {"istio": "ingressgateway"}),
            deployment=deployment,
            ports=_ports(self.ports, (8080, 8443)),
            source_ranges=tuple(self.source_ranges),
            hosts=tuple(self.hosts),
            gateway=self.gateway,
        )


@dataclass(frozen=True, slots=True)
class ResolvedGateway:
    """An ingress gateway with every default applied: what lint and backends read."""

    name: str
    api: Literal["istio", "gateway-api"]
    namespace: str
    service_account: str
    selector: tuple[tuple[str, str], ...]
    """The gateway pods' labels, sorted."""
    deployment: str
    ports: tuple[int, ...]
    """Listener (container) ports, sorted."""
    source_ranges: tuple[str, ...]
    hosts: tuple[str, ...]
    gateway: str | None
    """Classic only: the Istio `Gateway` resource (`namespace/name`) routes bind to."""


def _labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _ports(given: list[int] | None, default: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(set(given))) if given is not None else default


class NetworkPolicySettings(IntentModel):
    enabled: bool = True
    default_deny: bool = Field(
        default=False,
        description="deny every pod's ingress and egress in each namespace with services, "
        "allowing DNS, istiod, metrics scraping and what calls: and Externals declare",
    )

    @model_validator(mode="after")
    def _deny_needs_policies(self) -> NetworkPolicySettings:
        if self.default_deny and not self.enabled:
            raise ValueError("defaultDeny needs enabled: true (it is made of NetworkPolicies)")
        return self


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
    outbound_traffic_policy: Literal["REGISTRY_ONLY", "ALLOW_ANY"] | None = Field(
        default=None,
        description="each generated Sidecar's outbound mode; REGISTRY_ONLY blocks hosts "
        "neither a Service nor an External declares (unset: Istio's mesh config decides)",
    )
    monitoring_namespace: Name = "monitoring"
    ingress_gateway: IngressGateway | list[IngressGateway] = Field(
        default_factory=IngressGateway,
        description="the mesh's ingress gateway, or a list of them (each named uniquely)",
    )
    istio_version: str = Field(default="1.22", pattern=r"^1\.(2[2-9]|[3-9][0-9])$")
    retry_budget: int = Field(
        default=10,
        ge=1,
        description="most request attempts one call may fan out to along a call chain",
    )

    @model_validator(mode="after")
    def _unique_gateways(self) -> MeshSpec:
        names = [gateway.name for gateway in self.ingress_gateways]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(
                f"ingressGateway: more than one gateway is named {twice[0]!r}; give each a "
                "unique name"
            )
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose resolved gateways follow its own fields (the cached ones would not)."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("ingress_gateways", None)
        return copy

    @functools.cached_property
    def ingress_gateways(self) -> tuple[ResolvedGateway, ...]:
        """Every ingress gateway, defaults applied, in the order written (cached: rule
        sources resolve against it thousands of times per compile)."""
        given = self.ingress_gateway
        gateways = given if isinstance(given, list) else [given]
        return tuple(gateway.resolved() for gateway in gateways)


class MeshDocument(IntentModel):
    api_version: Literal["meshc/v1"]
    kind: Literal["Mesh"]
    metadata: Metadata
    spec: MeshSpec = Field(default_factory=MeshSpec)
