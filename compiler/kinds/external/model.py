"""External: hosts outside the mesh that services name in `calls:` like a Service.

An External is lowered to a ServiceEntry (so the callers' proxies know the hosts, also
under `outboundTrafficPolicy: REGISTRY_ONLY`), joins its callers' Sidecar egress, and,
under network default deny, opens its callers' egress to its ports.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, model_validator

from compiler.kinds.common import IntentModel, Metadata, Name

ExternalProtocol = Literal["http", "https", "tls", "tcp", "grpc"]
Resolution = Literal["dns", "static", "none"]

HOST_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
Host = Annotated[str, Field(pattern=HOST_PATTERN, max_length=253)]
"""A DNS name, optionally with a leading `*.` wildcard label."""

Address = Annotated[str, Field(pattern=r"^[0-9a-fA-F.:]+(/[0-9]{1,3})?$", max_length=49)]
"""An IPv4/IPv6 address or CIDR."""


class ExternalPort(IntentModel):
    name: Name
    port: int = Field(ge=1, le=65535)
    protocol: ExternalProtocol


class ExternalSpec(IntentModel):
    hosts: list[Host] = Field(min_length=1, max_length=256)
    ports: list[ExternalPort] = Field(min_length=1, max_length=256)
    resolution: Resolution | None = Field(
        default=None,
        description="how proxies find the endpoints: dns (default), static (the addresses "
        "are the endpoints) or none (pass through to the address dialled; the default "
        "for wildcard hosts)",
    )
    addresses: list[Address] = Field(
        default_factory=list,
        description="where the destination lives (IPs or CIDRs): NetworkPolicy egress "
        "under default deny uses them, else 0.0.0.0/0 on the ports",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExternalSpec:
        for address in self.addresses:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(f"addresses: {address!r} is not an IP address or CIDR") from None
        wildcard = next((h for h in self.hosts if h.startswith("*.")), None)
        if wildcard is not None and self.resolution not in (None, "none"):
            raise ValueError(
                f"hosts: {wildcard!r} is a wildcard, which proxies cannot resolve; "
                "use resolution: none or list the hosts"
            )
        if self.resolution == "static":
            if not self.addresses:
                raise ValueError("resolution: static needs addresses (the endpoints)")
            ranges = [a for a in self.addresses if "/" in a and not _single(a)]
            if ranges:
                raise ValueError(
                    f"resolution: static takes single addresses as endpoints, not {ranges[0]!r}"
                )
        _unique("ports", [str(p.port) for p in self.ports], "port")
        _unique("ports", [p.name for p in self.ports], "name")
        _unique("hosts", list(self.hosts), "host")
        return self

    @property
    def effective_resolution(self) -> Resolution:
        """`resolution`, else none for wildcard hosts and dns otherwise."""
        if self.resolution is not None:
            return self.resolution
        return "none" if any(h.startswith("*.") for h in self.hosts) else "dns"

    @property
    def matched_addresses(self) -> tuple[str, ...]:
        """The addresses proxies match connections to this External by: all of them with
        resolution none; with dns only when every one is a single IP (Istio takes no CIDR
        there, so a `/32` is written as the IP); none with static (the addresses are its
        endpoints). Without any, a TCP
        port is matched by port alone, whatever the host (Istio's IST0134)."""
        resolution = self.effective_resolution
        if resolution == "none":
            return tuple(self.addresses)
        if resolution == "dns" and all(map(_single, self.addresses)):
            return tuple(_ip(address) for address in self.addresses)
        return ()


def _ip(address: str) -> str:
    """A single address without its prefix (`203.0.113.10/32` → `203.0.113.10`)."""
    return str(ipaddress.ip_network(address, strict=False).network_address)


def _single(address: str) -> bool:
    network = ipaddress.ip_network(address, strict=False)
    return network.num_addresses == 1


def _unique(field: str, values: list[str], what: str) -> None:
    twice = sorted({value for value in values if values.count(value) > 1})
    if twice:
        raise ValueError(f"{field}: {what} {twice[0]!r} is listed twice")


class ExternalDocument(IntentModel):
    api_version: Literal["meshc/v1"]
    kind: Literal["External"]
    metadata: Metadata
    spec: ExternalSpec
