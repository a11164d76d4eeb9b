"""The proxy fleet as a CA rotation consumer: gate 1 of a root rotation waits until every
proxy validates peers with the new root, and a proxy shows that by ACKing an SDS response
whose validation context (`ROOTCA`) carries it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from compiler.lower.envoy.snapshot import SECRET, TRUST_BUNDLE
from reconciler.xds.session import Session


@dataclass(frozen=True, slots=True)
class XdsConsumer:
    """A `reconciler.ca.consumers.Consumer`: a report taken at one moment, so the CA reads
    a consistent value from its worker thread."""

    name: str
    fingerprints: frozenset[str]

    def trusted_fingerprints(self) -> frozenset[str]:
        return self.fingerprints


def trusted_by_all(sessions: Iterable[Session]) -> frozenset[str]:
    """Roots every connected proxy that uses the bundle has ACKed. No such proxy: nothing,
    so an idle fleet never opens the gate by default."""
    reports = [
        state.acked_roots if (state := session.types.get(SECRET)) else frozenset[str]()
        for session in sessions
        if session.snapshot is not None and TRUST_BUNDLE in session.snapshot.secrets
    ]
    if not reports:
        return frozenset()
    return frozenset.intersection(*reports)
