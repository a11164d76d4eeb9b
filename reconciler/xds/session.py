"""One ADS stream's state of the world: what the node asked for, what it was sent, what it
accepted. Transport-free (requests in, responses out) so the protocol is testable without
gRPC; the server feeds it requests, snapshots and secret changes.

The rules, as Envoy 1.40 behaves:
- LDS and CDS responses carry every resource of the node; RDS, EDS and SDS only the names
  the node subscribes to, and the subscription changes over time.
- A response is sent only when its content (version, names) differs from the last one sent
  on this stream: an unchanged resource gets no response, hence no ACK to wait for.
- A NACK (a request echoing the last nonce with `error_detail`) is recorded with Envoy's
  message; the rejected content is not sent again until the snapshot changes.
- A request with an older nonce is stale: Envoy will send a fresh one, so it is ignored.
- A node that reconnects (a restarted Envoy) while the current version of a type is one it
  rejected gets the last version it accepted instead, so a restart does not lose the
  working config; the NACK stays reported until the snapshot changes.
- After a CDS response that changed a cluster, the node's ClusterLoadAssignments are sent
  again: the replaced EDS cluster warms until it gets one, and Envoy does not re-request
  names it was already subscribed to (without this push it waits the ~15 s initial fetch
  timeout).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.core.v3.base_pb2 import ControlPlane
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest, DiscoveryResponse
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status

from compiler.lower.envoy.snapshot import (
    CLUSTER,
    ENDPOINTS,
    LISTENER,
    RESOURCE_TYPES,
    ROUTE,
    SECRET,
    TRUST_BUNDLE,
    Snapshot,
)
from reconciler.xds.references import Dependency, expected_names
from reconciler.xds.sds import NodeSecrets, SecretSource

log = logging.getLogger("meshd.xds")

SERVED_TYPES = (*RESOURCE_TYPES, SECRET)
WILDCARD_TYPES = frozenset({LISTENER, CLUSTER})
"""Types whose response carries every resource, whatever names the request lists."""
SHORT_NAMES = {LISTENER: "LDS", ROUTE: "RDS", CLUSTER: "CDS", ENDPOINTS: "EDS", SECRET: "SDS"}
CONTROL_PLANE = ControlPlane(identifier="meshd")

_nonces = itertools.count(1)


def next_nonce() -> str:
    """Nonces are unique per server, so a reply can never be mistaken for another stream's."""
    return f"{next(_nonces)}"


@dataclass(frozen=True, slots=True)
class Nack:
    version: str
    """The version Envoy rejected."""
    accepted_version: str
    """The version it still runs (`version_info` of the NACK; empty: none yet)."""
    message: str
    at: datetime


@dataclass(slots=True)
class Counters:
    """Totals over all streams, for the metrics (a closed stream's counts stay)."""

    pushes: dict[str, int] = field(default_factory=dict)
    acks: dict[str, int] = field(default_factory=dict)
    nacks: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    """By reason: identity, secret, type."""

    @staticmethod
    def bump(table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


@dataclass(slots=True)
class NodeMemory:
    """What outlives a node's stream: per type, the last version it accepted (with the
    resources of that version) and the versions it rejected (with Envoy's message)."""

    accepted: dict[str, tuple[str, Mapping[str, Message]]] = field(default_factory=dict)
    rejected: dict[str, dict[str, str]] = field(default_factory=dict)

    def reject(self, type_url: str, version: str, message: str) -> None:
        versions = self.rejected.setdefault(type_url, {})
        versions[version] = message
        for old in list(versions)[:-10]:
            del versions[old]


@dataclass(frozen=True, slots=True)
class _Content:
    """What one response would carry."""

    version: str
    resources: dict[str, Message]
    source: Mapping[str, Message]
    """Every resource of the type in that version (the node remembers it if it ACKs)."""
    rejection: str | None
    """Envoy's message when the current version was rejected and `version` is the fallback."""


@dataclass(slots=True)
class TypeState:
    """One resource type on one stream."""

    requested: frozenset[str] = frozenset()
    subscribed: bool = False
    sent_version: str | None = None
    sent_names: frozenset[str] | None = None
    sent_nonce: str | None = None
    sent_digests: dict[str, str] = field(default_factory=dict)
    sent_source: Mapping[str, Message] = field(default_factory=dict)
    """Every resource of the type in the version last sent (named types send a subset)."""
    fallback: bool = False
    """The last response was the node's last accepted version, not the rejected current one."""
    sent_roots: frozenset[str] = frozenset()
    """SDS: the roots of the bundle in the last response (the rotation consumer's report)."""
    pushed_at: datetime | None = None
    pending: bool = False
    """The last response has not been ACKed or NACKed yet."""
    acked_version: str | None = None
    acked_at: datetime | None = None
    acked_roots: frozenset[str] = frozenset()
    nack: Nack | None = None


@dataclass(slots=True)
class Session:
    """One node's ADS stream. `peer_identity` is what its client certificate proves."""

    stream_id: int
    node_id: str
    node_cluster: str
    peer_identity: str
    connected_since: datetime
    secrets: SecretSource
    clock: Callable[[], datetime]
    counters: Counters = field(default_factory=Counters)
    memory: NodeMemory = field(default_factory=NodeMemory)
    snapshot: Snapshot | None = None
    generation: int = 0
    """The generation of the last snapshot this session was given."""
    types: dict[str, TypeState] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    """`snapshot.version` by type, computed once per snapshot (every ACK would re-hash)."""
    expected: dict[Dependency, set[str]] | None = None
    """The names the snapshot's clusters and listeners will make the node ask for."""
    refusals: list[str] = field(default_factory=list)
    refused_secrets: set[str] = field(default_factory=set)

    def state(self, type_url: str) -> TypeState:
        return self.types.setdefault(type_url, TypeState())

    # -- inputs --------------------------------------------------------------------------

    def on_request(self, request: DiscoveryRequest) -> list[DiscoveryResponse]:
        type_url = request.type_url
        if type_url not in SERVED_TYPES:
            self.refuse("type", f"type {type_url!r} is not served (LDS, RDS, CDS, EDS, SDS are)")
            return []
        state = self.state(type_url)
        if request.response_nonce:
            if request.response_nonce != state.sent_nonce:
                return []  # stale: answers an older response; a fresh request follows
            if state.pending:  # the first answer counts; later ones only resubscribe
                error = request.error_detail if request.HasField("error_detail") else None
                self.record_reply(type_url, state, error, request.version_info)
        state.subscribed = True
        state.requested = frozenset(request.resource_names)
        if type_url == SECRET:
            self._check_secret_names(state.requested)
        return self._respond(type_url)

    def set_snapshot(self, snapshot: Snapshot, generation: int) -> list[DiscoveryResponse]:
        """Push every subscribed type whose content changed, CDS and EDS first."""
        if snapshot is not self.snapshot:
            self.versions.clear()
            self.expected = None
        self.snapshot = snapshot
        self.generation = generation
        self._check_secret_names(self._requested(SECRET))
        return [response for t in SERVED_TYPES for response in self._respond(t)]

    def refresh_secrets(self) -> list[DiscoveryResponse]:
        """A certificate was renewed or the bundle changed: push SDS if its content moved."""
        return self._respond(SECRET)

    def refuse(self, reason: str, why: str) -> None:
        """Record and log a refusal, once per distinct reason on this stream (Envoy repeats
        its requests)."""
        self.counters.bump(self.counters.refused, reason)
        if why in self.refusals:
            return
        log.warning("xds: refused node %s (%s): %s", self.node_id, self.peer_identity, why)
        self.refusals.append(why)

    # -- queries -------------------------------------------------------------------------

    def settled(self, generation: int) -> bool:
        """Has this node answered everything it was sent up to `generation` (and been sent
        every secret it asked for)?"""
        return (
            self.generation >= generation
            and not any(state.pending for state in self.types.values())
            and not self._missing_secrets()
            and self._asked_for_everything()
        )

    def _asked_for_everything(self) -> bool:
        """Has the node subscribed to all it will ask for? Its listeners and clusters, and
        the names in those it accepted (Envoy asks for them in a request after the ACK)."""
        snapshot = self.snapshot
        if snapshot is None:
            return True
        for wildcard in WILDCARD_TYPES:
            state = self.types.get(wildcard)
            if snapshot.resources.get(wildcard) and (state is None or not state.subscribed):
                return False
        if self.expected is None:
            self.expected = expected_names(snapshot.resources)
        for (child, parent), names in self.expected.items():
            if self._holds_current(parent) and not names <= self._requested(child):
                return False
        return True

    def _holds_current(self, type_url: str) -> bool:
        state = self.types.get(type_url)
        return (
            state is not None
            and state.nack is None
            and not state.pending
            and state.acked_version is not None
            and state.acked_version == state.sent_version == self._version(type_url)
        )

    # -- replies -------------------------------------------------------------------------

    def record_reply(
        self, type_url: str, state: TypeState, error: Status | None, running: str
    ) -> None:
        """An answer to the last response: a NACK when `error` says so, else an ACK.
        `running` is the version the node says it runs (state of the world sends it)."""
        state.pending = False
        now = self.clock()
        type_name = SHORT_NAMES[type_url]
        if is_nack(error):
            assert error is not None
            message = " ".join(error.message.split())  # one line in logs
            state.nack = Nack(
                version=state.sent_version or "",
                accepted_version=running,
                message=message,
                at=now,
            )
            if running:
                state.acked_version = running
            self.memory.reject(type_url, state.nack.version, message)
            self.counters.bump(self.counters.nacks, type_name)
            log.warning(
                "xds: node %s rejected %s version %s (still runs %s): %s",
                self.node_id,
                type_name,
                state.sent_version,
                running or "nothing",
                message,
            )
            return
        state.acked_version = running
        state.acked_at = now
        state.acked_roots = state.sent_roots
        if not state.fallback:
            state.nack = None
        if type_url != SECRET and state.sent_version is not None:
            self.memory.accepted[type_url] = (state.sent_version, state.sent_source)
        self.counters.bump(self.counters.acks, type_name)

    def _requested(self, type_url: str) -> frozenset[str]:
        state = self.types.get(type_url)
        return state.requested if state is not None else frozenset()

    def _respond(self, type_url: str) -> list[DiscoveryResponse]:
        state = self.types.get(type_url)
        snapshot = self.snapshot
        if snapshot is None or state is None or not state.subscribed:
            return []
        content = (
            self._secret_content(state)
            if type_url == SECRET
            else self._resource_content(type_url, state)
        )
        if content is None:
            return []  # an allowed certificate is being issued; pushed once it is here
        version, resources = content.version, content.resources
        names = frozenset(resources)
        if state.sent_version == version and state.sent_names == names:
            return []
        if not names and type_url not in WILDCARD_TYPES:
            state.sent_version, state.sent_names = version, names
            return []  # nothing subscribed that exists: an empty answer would say nothing
        response = self._response(type_url, state, version, resources)
        self._note_fallback(type_url, state, content)
        if type_url == CLUSTER and _replaces_eds_cluster(state, resources):
            state.sent_digests = _digests(resources)
            return [response, *self._resend(ENDPOINTS)]
        state.sent_digests = _digests(resources)
        return [response]

    def _resource_content(self, type_url: str, state: TypeState) -> _Content:
        """The snapshot's version of the type, or, when the node rejected that version and
        this stream has not sent it, the last version the node accepted."""
        assert self.snapshot is not None
        version = self._version(type_url)
        source = self.snapshot.resources.get(type_url, {})
        rejection = None
        rejected = self.memory.rejected.get(type_url, {})
        accepted = self.memory.accepted.get(type_url)
        if version in rejected and accepted is not None and state.sent_version != version:
            (version, source), rejection = accepted, rejected[version]
        if type_url in WILDCARD_TYPES:
            resources = dict(source)
        else:
            resources = {n: source[n] for n in sorted(state.requested) if n in source}
        return _Content(version, resources, source, rejection)

    def _version(self, type_url: str) -> str:
        assert self.snapshot is not None
        if type_url not in self.versions:
            self.versions[type_url] = self.snapshot.version(type_url)
        return self.versions[type_url]

    def _secret_content(self, state: TypeState) -> _Content | None:
        node = self._node_secrets()
        content = node.content(state.requested) if node is not None else None
        if content is None:
            return None
        return _Content(content.version, content.secrets, {}, None)  # no key kept past it

    def _note_fallback(self, type_url: str, state: TypeState, content: _Content) -> None:
        state.sent_source = content.source
        state.fallback = content.rejection is not None
        rejection = content.rejection
        if rejection is not None:
            current = self._version(type_url)
            state.nack = Nack(current, state.sent_version or "", rejection, self.clock())
            log.warning(
                "xds: node %s rejected %s version %s before; serving its last accepted %s",
                self.node_id,
                SHORT_NAMES[type_url],
                current,
                state.sent_version,
            )

    def _resend(self, type_url: str) -> list[DiscoveryResponse]:
        state = self.types.get(type_url)
        if state is None:
            return []
        state.sent_version = None
        return self._respond(type_url)

    def mark_sent(
        self, type_url: str, state: TypeState, version: str, names: frozenset[str]
    ) -> str:
        """Book a response about to go out; returns its nonce."""
        nonce = next_nonce()
        state.sent_version = version
        state.sent_names = names
        state.sent_nonce = nonce
        state.pushed_at = self.clock()
        state.pending = True
        self.counters.bump(self.counters.pushes, SHORT_NAMES[type_url])
        if type_url == SECRET:
            bundle = self.secrets.bundle
            included = TRUST_BUNDLE in names and bundle is not None
            state.sent_roots = bundle.fingerprints if included and bundle else frozenset()
        log.debug(
            "xds: push %s version %s (%d resources) to %s, nonce %s",
            SHORT_NAMES[type_url],
            version,
            len(names),
            self.node_id,
            nonce,
        )
        return nonce

    def _response(
        self, type_url: str, state: TypeState, version: str, resources: Mapping[str, Message]
    ) -> DiscoveryResponse:
        nonce = self.mark_sent(type_url, state, version, frozenset(resources))
        return DiscoveryResponse(
            version_info=version,
            resources=[pack(resources[name]) for name in sorted(resources)],
            type_url=type_url,
            nonce=nonce,
            control_plane=CONTROL_PLANE,
        )

    # -- SDS -----------------------------------------------------------------------------

    def _node_secrets(self) -> NodeSecrets | None:
        if self.snapshot is None:
            return None
        return NodeSecrets(self.snapshot, self.peer_identity, self.secrets)

    def _check_secret_names(self, requested: frozenset[str]) -> None:
        """Refuse (once per name) secrets the node may not fetch."""
        node = self._node_secrets()
        if node is None:
            return
        for name in sorted(requested - self.refused_secrets):
            why = node.refusal(name)
            if why is not None:
                self.refuse("secret", why)
                self.refused_secrets.add(name)

    def _missing_secrets(self) -> list[str]:
        node = self._node_secrets()
        return node.missing(self._requested(SECRET)) if node is not None else []


def _replaces_eds_cluster(state: TypeState, clusters: Mapping[str, Message]) -> bool:
    """Whether this CDS response changes an EDS cluster the node already had (Envoy warms
    the replacement until it gets endpoints, and does not ask for them again)."""
    before = state.sent_digests
    return any(
        isinstance(cluster, Cluster)
        and cluster.type == Cluster.EDS
        and name in before
        and before[name] != resource_digest(cluster)
        for name, cluster in clusters.items()
    )


def _digests(resources: Mapping[str, Message]) -> dict[str, str]:
    return {name: resource_digest(resource) for name, resource in resources.items()}


def is_nack(error: Status | None) -> bool:
    return error is not None and bool(error.code or error.message)


def pack(message: Message) -> AnyMessage:
    packed = AnyMessage()
    packed.Pack(message)
    return packed


def resource_digest(message: Message) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()


def iter_types(session: Session) -> Iterator[tuple[str, TypeState]]:
    for type_url in SERVED_TYPES:
        if type_url in session.types:
            yield type_url, session.types[type_url]
