"""AccessPolicy: zero-trust rules for who may call a service, and how."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from compiler.kinds.common import IntentModel, Metadata, Ref

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

_WILDCARD_OR_REF = r"^(\*|([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"
_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_WILDCARD_OR_NS = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"
_IDENTITY = r"^(\*|spiffe://[^/\s]+/ns/[^/\s]+/sa/[^/\s]+|[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$"


def _check_path(value: str) -> str:
    if value == "*":
        return value
    inner = value[1:-1] if len(value) > 1 else ""
    if "*" in inner or not value or (value.count("*") > 1):
        raise ValueError(
            f"path {value!r}: '*' may only stand at the start or the end (exact, 'prefix*' or "
            "'*suffix'), the only forms Istio accepts"
        )
    if not value.startswith(("/", "*")):
        raise ValueError(f"path {value!r} must start with '/'")
    return value


Path = Annotated[str, AfterValidator(_check_path)]


class Source(IntentModel):
    """Who is calling: exactly one of a service, a namespace, an identity or the ingress gateway."""

    service: str | None = Field(default=None, pattern=_WILDCARD_OR_REF)
    namespace: str | None = Field(default=None, pattern=_WILDCARD_OR_NS)
    identity: str | None = Field(
        default=None,
        pattern=_IDENTITY,
        description="service account as ns/sa, a SPIFFE ID, or '*' for any mesh identity",
    )
    ingress_gateway: bool | Annotated[str, Field(pattern=_NAME)] | None = Field(
        default=None,
        description="true: any of the mesh's ingress gateways; a name: that gateway only",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [
            v for v in (self.service, self.namespace, self.identity, self.ingress_gateway) if v
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of service, namespace, identity or ingressGateway (true, or "
                "a gateway's name)"
            )
        return self

    @property
    def is_wildcard(self) -> bool:
        return "*" in (self.service, self.namespace, self.identity)


class Operation(IntentModel):
    """What may be called; an empty list means any."""

    ports: list[int | str] = Field(
        default_factory=list, description="service port numbers or names"
    )
    methods: list[Method] = Field(default_factory=list)
    paths: list[Path] = Field(default_factory=list)

    @property
    def is_any(self) -> bool:
        return not (self.ports or self.methods or self.paths)


class Rule(IntentModel):
    from_: list[Source] = Field(alias="from", min_length=1)
    to: Operation = Field(default_factory=Operation)
    headers: dict[str, list[str]] = Field(
        default_factory=dict, description="request header name -> accepted values (any of)"
    )
    action: Literal["allow", "deny"] = "allow"
    log: bool = False
    justification: str | None = None


class AccessPolicySpec(IntentModel):
    service: Ref
    mode: Literal["enforce", "shadow"] = "enforce"
    rules: list[Rule] = Field(min_length=1)


class AccessPolicyDocument(IntentModel):
    api_version: Literal["meshc/v1"]
    kind: Literal["AccessPolicy"]
    metadata: Metadata
    spec: AccessPolicySpec


def pattern_matches(pattern: str, value: str) -> bool:
    """Istio's string match for paths and header values: exact, `prefix*`, `*suffix`, or
    `*` (any non-empty value)."""
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def path_covers(outer: str, inner: str) -> bool:
    """Whether every path matched by `inner` is matched by `outer`."""
    if outer == "*":
        return True
    if inner == "*":
        return False
    if outer.endswith("*"):
        prefix = outer[:-1]
        if inner.endswith("*"):
            return inner[:-1].startswith(prefix)
        return not inner.startswith("*") and inner.startswith(prefix)
    if outer.startswith("*"):
        suffix = outer[1:]
        if inner.startswith("*"):
            return inner[1:].endswith(suffix)
        return not inner.endswith("*") and inner.endswith(suffix)
    return outer == inner
