"""Which secrets a node may fetch, and what SDS sends it.

A node may have the SDS names its snapshot lists, and a certificate only when it is for
the identity its client certificate proves: a snapshot naming someone else's certificate
gets that name refused, never someone else's key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import Message

from compiler.lower.envoy.snapshot import SecretRef, Snapshot
from reconciler.xds.secrets import (
    IssuedCertificate,
    TrustBundle,
    bundle_secret,
    certificate_secret,
)


class SecretSource(Protocol):
    """Where the material comes from (the server's `SecretCache`)."""

    @property
    def certificates(self) -> Mapping[str, IssuedCertificate]: ...

    @property
    def bundle(self) -> TrustBundle | None: ...


@dataclass(frozen=True, slots=True)
class SdsContent:
    secrets: dict[str, Message]
    version: str
    """From public facts only (serials, the bundle digest): no key feeds a logged digest."""
    tags: dict[str, str]
    """Each secret's own version (delta xDS versions resources one by one)."""


@dataclass(frozen=True, slots=True)
class NodeSecrets:
    """The secrets of one node, as its snapshot and its proven identity allow."""

    snapshot: Snapshot
    peer_identity: str
    source: SecretSource

    def allowed(self) -> dict[str, SecretRef]:
        return {
            name: ref
            for name, ref in self.snapshot.secrets.items()
            if ref.kind == "trust-bundle" or ref.identity == self.peer_identity
        }

    def refusal(self, name: str) -> str | None:
        """Why the node may not fetch `name`, or None when it may."""
        ref = self.snapshot.secrets.get(name)
        if ref is None:
            return f"secret {name!r} is not in its snapshot"
        if ref.kind == "certificate" and ref.identity != self.peer_identity:
            return f"secret {name!r} is for {ref.identity}, not the node's identity"
        return None

    def missing(self, requested: frozenset[str]) -> list[str]:
        """Requested, allowed, and not available yet (a certificate being issued)."""
        allowed = self.allowed()
        return [
            name for name in sorted(requested & set(allowed)) if not self._available(allowed[name])
        ]

    def content(self, requested: frozenset[str]) -> SdsContent | None:
        """The allowed requested secrets; None while one of them is still missing."""
        if self.missing(requested):
            return None
        allowed = self.allowed()
        secrets: dict[str, Message] = {}
        tags: dict[str, str] = {}
        for name in sorted(requested & set(allowed)):
            secrets[name], tags[name] = self._secret(name, allowed[name])
        return SdsContent(secrets, _version(tags), tags)

    def _available(self, ref: SecretRef) -> bool:
        if ref.kind == "trust-bundle":
            return self.source.bundle is not None
        return ref.identity in self.source.certificates

    def _secret(self, name: str, ref: SecretRef) -> tuple[Message, str]:
        if ref.kind == "trust-bundle":
            bundle = self.source.bundle
            assert bundle is not None
            return bundle_secret(name, bundle), bundle.digest
        issued = self.source.certificates[ref.identity]
        return certificate_secret(name, issued), issued.serial


def _version(tags: Mapping[str, str]) -> str:
    text = "\n".join(f"{name}={tags[name]}" for name in sorted(tags))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
