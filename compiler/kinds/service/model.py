"""Service: a workload's selector, identity, ports, versions and declared calls."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compiler.kinds.common import IntentModel, Labels, Metadata, Name, Ref

Protocol = Literal["http", "http2", "grpc", "tcp"]


class Port(IntentModel):
    name: Name
    port: int = Field(ge=1, le=65535)
    target_port: int | None = Field(
        default=None, ge=1, le=65535, description="the container port (defaults to port)"
    )
    protocol: Protocol | None = None

    @property
    def container_port(self) -> int:
        return self.target_port or self.port


class Version(IntentModel):
    labels: Labels = Field(default_factory=dict)
    endpoints: list[str] = Field(
        default_factory=list,
        description="host:port of each instance, for the xDS target",
        json_schema_extra={"items": {"pattern": r"^[^\s:]+:\d{1,5}$"}},
    )


class ServiceSpec(IntentModel):
    selector: Labels | None = Field(
        default=None, description="workload labels; default {app: <name>}"
    )
    identity: Name | None = Field(default=None, description="service account; default <name>")
    ports: list[Port] = Field(
        default_factory=list,
        description="the ports it serves; none: a caller only (a load generator, a job)",
    )
    versions: dict[Name, Version] = Field(default_factory=dict)
    calls: list[Ref] = Field(
        default_factory=list, description="the Services and Externals it calls (name or ns/name)"
    )


class ServiceDocument(IntentModel):
    api_version: Literal["meshc/v1"]
    kind: Literal["Service"]
    metadata: Metadata
    spec: ServiceSpec
