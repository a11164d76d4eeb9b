"""Incremental (delta) ADS on one stream: the same node, snapshot, secrets and tracking as
the state-of-the-world session, but subscriptions arrive as changes and each response
carries only the resources that changed (each with its own version) and the names removed.

- LDS and CDS are wildcard (Envoy subscribes with no names, or `*`); RDS, EDS and SDS
  carry the names subscribed. `initial_resource_versions` (a reconnecting Envoy's) tells
  what the node already has, so an unchanged resource is not sent again.
- A subscription change on a request with a stale nonce still counts (it is a change, not
  a repetition); only its ACK or NACK is ignored.
- A NACK leaves the rejected versions booked as sent: they are not sent again until the
  resource changes.
- After a CDS response that changes an EDS cluster the node had, its endpoints are sent
  again (Envoy warms the replacement until it gets them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.service.discovery.v3.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    Resource,
)
from google.protobuf.message import Message

from compiler.lower.envoy.snapshot import CLUSTER, ENDPOINTS, SECRET
from reconciler.xds.session import (
    CONTROL_PLANE,
    SERVED_TYPES,
    WILDCARD_TYPES,
    Session,
    TypeState,
    is_nack,
    pack,
    resource_digest,
)

WILDCARD = "*"


@dataclass(slots=True)
class DeltaState:
    """What one type's subscription is and what the node holds, as far as we sent it."""

    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)
    """Resource name → the version the node has (sent, or reported on reconnect)."""


@dataclass(frozen=True, slots=True)
class _Wanted:
    resources: dict[str, Message]
    versions: dict[str, str]
    system_version: str
    source: Mapping[str, Message]


@dataclass(slots=True)
class DeltaSession(Session):
    """One node's delta ADS stream."""

    delta: dict[str, DeltaState] = field(default_factory=dict)

    def on_request(self, request: DeltaDiscoveryRequest) -> list[DeltaDiscoveryResponse]:
        type_url = request.type_url
        if type_url not in SERVED_TYPES:
            self.refuse("type", f"type {type_url!r} is not served (LDS, RDS, CDS, EDS, SDS are)")
            return []
        state = self.state(type_url)
        subscription = self.delta.setdefault(type_url, DeltaState())
        if request.response_nonce == state.sent_nonce and state.pending:
            error = request.error_detail if request.HasField("error_detail") else None
            running = state.acked_version if is_nack(error) else state.sent_version
            self.record_reply(type_url, state, error, running or "")
        self._subscribe(type_url, state, subscription, request)
        if type_url == SECRET:
            self._check_secret_names(state.requested)
        return self._respond(type_url)

    def _subscribe(
        self,
        type_url: str,
        state: TypeState,
        subscription: DeltaState,
        request: DeltaDiscoveryRequest,
    ) -> None:
        added = set(request.resource_names_subscribe)
        removed = set(request.resource_names_unsubscribe)
        if not state.subscribed:
            subscription.held.update(request.initial_resource_versions)
            subscription.wildcard = type_url in WILDCARD_TYPES and (not added or WILDCARD in added)
        if WILDCARD in added:
            subscription.wildcard = True
        if WILDCARD in removed:
            subscription.wildcard = False
        subscription.names |= added - {WILDCARD}
        subscription.names -= removed
        for name in removed:
            subscription.held.pop(name, None)
        state.subscribed = True
        state.requested = frozenset(subscription.names)

    def _respond(self, type_url: str) -> list[DeltaDiscoveryResponse]:
        state = self.types.get(type_url)
        subscription = self.delta.get(type_url)
        if self.snapshot is None or state is None or subscription is None:
            return []
        wanted = self._wanted(type_url, state, subscription)
        if wanted is None:
            return []  # an allowed certificate is being issued; pushed once it is here
        held = subscription.held
        changed = sorted(n for n in wanted.resources if held.get(n) != wanted.versions[n])
        gone = sorted(
            name
            for name in held
            if name not in wanted.resources
            and (subscription.wildcard or name in subscription.names)
        )
        if not changed and not gone:
            return []
        replaced_eds = type_url == CLUSTER and any(
            _is_eds(wanted.resources[name]) and name in held for name in changed
        )
        nonce = self.mark_sent(type_url, state, wanted.system_version, frozenset(wanted.resources))
        state.sent_source = wanted.source
        state.fallback = False
        for name in changed:
            held[name] = wanted.versions[name]
        for name in gone:
            del held[name]
        response = DeltaDiscoveryResponse(
            system_version_info=wanted.system_version,
            type_url=type_url,
            nonce=nonce,
            control_plane=CONTROL_PLANE,
            removed_resources=gone,
            resources=[
                Resource(name=n, version=wanted.versions[n], resource=pack(wanted.resources[n]))
                for n in changed
            ],
        )
        if replaced_eds and ENDPOINTS in self.delta:
            self.delta[ENDPOINTS].held.clear()
            return [response, *self._respond(ENDPOINTS)]
        return [response]

    def _wanted(self, type_url: str, state: TypeState, subscription: DeltaState) -> _Wanted | None:
        """What the node should hold of this type now (None: a secret is not issued yet)."""
        assert self.snapshot is not None
        if type_url == SECRET:
            node = self._node_secrets()
            content = node.content(state.requested) if node is not None else None
            if content is None:
                return None
            return _Wanted(content.secrets, content.tags, content.version, {})
        source = self.snapshot.resources.get(type_url, {})
        names = set(source) if subscription.wildcard else subscription.names & set(source)
        resources = {name: source[name] for name in names}
        versions = {name: resource_digest(res)[:16] for name, res in resources.items()}
        return _Wanted(resources, versions, self._version(type_url), source)


def _is_eds(resource: Message) -> bool:
    return isinstance(resource, Cluster) and resource.type == Cluster.EDS
