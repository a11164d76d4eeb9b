"""The embedded Envoy control plane: an ADS server (state of the world or delta, SDS on
the same stream) serving each node its own snapshot, over mutual TLS.

    server = XdsServer(ca)                         # CAService or anything with issue/bundle_pem
    port = await server.start("127.0.0.1", 0, CONTROL_PLANE_ID)  # or a fixed ServerTls
    generation = server.set_snapshots(snapshots)   # {node_id: Snapshot}; pushes what changed
    result = await server.wait_acked(generation, timeout=5.0)
    print(status_table(server.status())); server.metrics_text()
    await server.stop()

Everything runs on one event loop: `set_snapshots` and the streams share state without locks,
so call it from the loop that started the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NoReturn, Protocol

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc
from envoy.service.discovery.v3.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
)

from compiler.lower.envoy.snapshot import SECRET, Snapshot
from reconciler.xds.auth import ServerTls, peer_identity
from reconciler.xds.consumer import XdsConsumer, trusted_by_all
from reconciler.xds.delta import DeltaSession
from reconciler.xds.errors import XdsError
from reconciler.xds.secrets import CertificateAuthority, Clock, SecretCache, utc_now
from reconciler.xds.session import Counters, NodeMemory, Session
from reconciler.xds.status import ProxyStatus, metrics_text, proxy_status

log = logging.getLogger("meshd.xds")


class StreamContext(Protocol):
    """The part of `grpc.aio.ServicerContext` a stream uses (a fake one in unit tests)."""

    def auth_context(self) -> Mapping[str, Sequence[bytes]]: ...

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn: ...


@dataclass(frozen=True, slots=True)
class Close:
    """Put on a stream's outbox to end it with a status."""

    code: grpc.StatusCode
    message: str


@dataclass(frozen=True, slots=True)
class Refusal:
    node_id: str
    peer_identity: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Convergence:
    """How the connected proxies answered one generation's pushes."""

    generation: int
    acked: tuple[str, ...]
    nacked: Mapping[str, str]
    """Node → Envoy's message (first rejected type)."""
    pending: tuple[str, ...]
    """Connected nodes that have not answered yet (non-empty only after a timeout)."""
    disconnected: tuple[str, ...]
    """Nodes with a snapshot but no stream."""

    @property
    def complete(self) -> bool:
        return not self.pending


@dataclass(slots=True)
class _Stream:
    session: Session
    outbox: asyncio.Queue[DiscoveryResponse | Close] = field(default_factory=asyncio.Queue)

    def send(self, responses: Sequence[DiscoveryResponse]) -> None:
        for response in responses:
            self.outbox.put_nowait(response)


@dataclass(slots=True)
class XdsServer:
    """The ADS server and the API the reconcile loop drives it with."""

    ca: CertificateAuthority
    clock: Clock = utc_now
    renew_check: timedelta = timedelta(seconds=30)
    counters: Counters = field(default_factory=Counters)
    refusals: list[Refusal] = field(default_factory=list)
    generation: int = 0
    secrets: SecretCache = field(init=False)
    _snapshots: dict[str, Snapshot] = field(default_factory=dict)
    _streams: dict[int, _Stream] = field(default_factory=dict)
    _memory: dict[str, NodeMemory] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _grpc: grpc.aio.Server | None = None
    _own_identity: str | None = None
    _served_tls: ServerTls | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.secrets = SecretCache(
            self.ca, clock=self.clock, check_every=self.renew_check, on_change=self._on_secrets
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str, port: int, tls: ServerTls | str) -> int:
        """Listen with mutual TLS (a client certificate from the mesh CA is required) and
        start renewing certificates; returns the port (useful with port 0).

        `tls` is fixed material, or the control plane's own SPIFFE ID: then its certificate
        is issued and renewed like a workload's, and the client CA follows the trust bundle
        (a root rotation needs both), picked up at the next TLS handshake."""
        if isinstance(tls, str):
            tls = await self._issue_own(tls)
        self._served_tls = tls
        server = grpc.aio.server(
            options=[
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ]
        )
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(_Servicer(self), server)
        credentials = grpc.dynamic_ssl_server_credentials(
            _certificate_configuration(tls),
            self._current_tls,
            require_client_authentication=True,
        )
        try:
            bound = int(server.add_secure_port(f"{host}:{port}", credentials))
        except RuntimeError:  # gRPC's way of saying the bind failed
            bound = 0
        if bound == 0:
            raise OSError(
                f"xds: cannot listen on {host}:{port} (in use, or not an address of this "
                "host); choose another port, or 0 for any free one"
            )
        await server.start()
        self._grpc = server
        self.start_secret_refresh()
        log.info("xds: listening on %s:%d (mutual TLS)", host, bound)
        return bound

    async def _issue_own(self, identity: str) -> ServerTls:
        self._own_identity = identity
        self.secrets.want([identity])
        await self.secrets.refresh()
        material = self._own_tls()
        if material is None:
            problems = "; ".join(self.secrets.errors.values()) or "no certificate"
            raise XdsError(f"xds: the control plane's certificate: {problems}")
        return material

    def _own_tls(self) -> ServerTls | None:
        issued = self.secrets.certificates.get(self._own_identity or "")
        bundle = self.secrets.bundle
        if issued is None or bundle is None:
            return None
        return ServerTls(issued.chain_pem, issued.key_pem, bundle.pem)

    def _current_tls(self) -> object | None:
        """Called by gRPC before each handshake: new material after a renewal, else None."""
        material = self._own_tls()
        if material is None or material == self._served_tls:
            return None
        self._served_tls = material
        log.info("xds: control plane certificate or client CA renewed")
        return _certificate_configuration(material)

    def start_secret_refresh(self) -> None:
        """Issue and renew certificates in the background (`start` does this)."""
        self._tasks.append(asyncio.get_running_loop().create_task(self.secrets.run()))

    async def stop(self, grace: float = 1.0) -> None:
        for stream in self._streams.values():
            stream.outbox.put_nowait(Close(grpc.StatusCode.UNAVAILABLE, "control plane stopping"))
        if self._grpc is not None:
            await self._grpc.stop(grace)
            self._grpc = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- the loop's API ------------------------------------------------------------------

    def set_snapshots(self, snapshots: Mapping[str, Snapshot]) -> int:
        """Swap in a whole generation and push each connected node what changed for it."""
        self.generation += 1
        self._snapshots = dict(snapshots)
        self._memory = {n: m for n, m in self._memory.items() if n in self._snapshots}
        self.secrets.retain(_certificate_identities(self._snapshots.values()) | self._own())
        for stream in list(self._streams.values()):
            self._apply(stream)
        self._notify()
        return self.generation

    def snapshot(self, node_id: str) -> Snapshot | None:
        return self._snapshots.get(node_id)

    def status(self) -> list[ProxyStatus]:
        return [proxy_status(stream.session) for stream in self._streams.values()]

    def metrics_text(self) -> str:
        return metrics_text(
            sessions=[stream.session for stream in self._streams.values()],
            counters=self.counters,
            certificates=self.secrets.certificates.values(),
            generation=self.generation,
        )

    def convergence(self, generation: int) -> Convergence:
        acked: list[str] = []
        nacked: dict[str, str] = {}
        pending: list[str] = []
        connected = set()
        for stream in self._streams.values():
            session = stream.session
            if session.snapshot is None:
                continue
            connected.add(session.node_id)
            if not session.settled(generation):
                pending.append(session.node_id)
                continue
            nacks = [s.nack.message for s in session.types.values() if s.nack is not None]
            if nacks:
                nacked[session.node_id] = nacks[0]
            else:
                acked.append(session.node_id)
        return Convergence(
            generation=generation,
            acked=tuple(sorted(acked)),
            nacked=dict(sorted(nacked.items())),
            pending=tuple(sorted(pending)),
            disconnected=tuple(sorted(set(self._snapshots) - connected)),
        )

    async def wait_acked(
        self, generation: int, timeout: float, *, wait_for_connect: bool = False
    ) -> Convergence:
        """Wait until every connected proxy ACKed or NACKed what `generation` pushed to it
        (a proxy that had nothing to change is done at once); after `timeout` seconds,
        return with the ones still pending listed. With `wait_for_connect`, nodes that have
        a snapshot but no stream yet (a proxy just started) are waited for too."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = self.convergence(generation)
            left = deadline - loop.time()
            done = result.complete and not (wait_for_connect and result.disconnected)
            if done or left <= 0:
                return result
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=left)

    def trust_consumer(self, name: str) -> XdsConsumer:
        """The CA rotation consumer this fleet is registered as (`meshd ca consumer add NAME
        --kind xds`): the roots every connected proxy has ACKed in its validation context."""
        sessions = [s.session for s in self._streams.values() if s.session.snapshot is not None]
        return XdsConsumer(name, trusted_by_all(sessions))

    # -- streams -------------------------------------------------------------------------

    async def handle_stream(
        self,
        requests: AsyncIterator[DiscoveryRequest],
        context: StreamContext,
        *,
        delta: bool = False,
    ) -> AsyncIterator[DiscoveryResponse]:
        """One ADS stream (state of the world, or incremental with `delta`): authenticate,
        then answer requests and pushes until it ends."""
        identity = peer_identity(context.auth_context())
        first = await anext(requests, None)
        if first is None:
            return
        node_id = first.node.id
        if identity is None:
            await self._refuse(context, node_id, None, "no client certificate with a SPIFFE ID")
        if not node_id or not first.node.cluster:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "the first request must carry node.id and node.cluster (set both in the "
                "Envoy bootstrap)",
            )
        assert identity is not None
        stream_id = next(self._ids)
        session = (DeltaSession if delta else Session)(
            stream_id=stream_id,
            node_id=node_id,
            node_cluster=first.node.cluster,
            peer_identity=identity,
            connected_since=self.clock(),
            secrets=self.secrets,
            clock=self.clock,
            counters=self.counters,
            memory=self._memory.setdefault(node_id, NodeMemory()),
        )
        snapshot = self._snapshots.get(node_id)
        if snapshot is not None and snapshot.identity != identity:
            await self._refuse(context, node_id, identity, _mismatch(snapshot, identity))
        stream = _Stream(session)
        self._streams[stream_id] = stream
        log.info("xds: node %s connected as %s (stream %d)", node_id, identity, stream_id)
        reader = asyncio.get_running_loop().create_task(self._read(first, requests, stream))
        try:
            self._apply(stream)
            while True:
                item = await stream.outbox.get()
                if isinstance(item, Close):
                    if item.code is grpc.StatusCode.OK:
                        return
                    await context.abort(item.code, item.message)
                yield item
        finally:
            reader.cancel()
            del self._streams[stream_id]
            self._notify()
            log.info("xds: node %s disconnected (stream %d)", node_id, stream_id)

    async def _read(
        self, first: DiscoveryRequest, requests: AsyncIterator[DiscoveryRequest], stream: _Stream
    ) -> None:
        try:
            self._receive(stream, first)
            async for request in requests:
                self._receive(stream, request)
            stream.outbox.put_nowait(Close(grpc.StatusCode.OK, ""))
        except asyncio.CancelledError:
            raise
        except (grpc.RpcError, grpc.aio.AbortError):  # the peer went away, or we ended it
            stream.outbox.put_nowait(Close(grpc.StatusCode.CANCELLED, "the peer went away"))
        except Exception as exc:  # a bug here must end this stream only, and be seen
            log.error(
                "xds: stream %d of node %s failed: %r",
                stream.session.stream_id,
                stream.session.node_id,
                exc,
            )
            stream.outbox.put_nowait(Close(grpc.StatusCode.INTERNAL, "control plane error"))

    def _receive(self, stream: _Stream, request: DiscoveryRequest) -> None:
        stream.send(stream.session.on_request(request))
        if request.type_url == SECRET:
            self._want_certificate(stream.session)
        self._notify()

    def _apply(self, stream: _Stream) -> None:
        """Give a stream its node's current snapshot, or end it if it may have none."""
        session = stream.session
        snapshot = self._snapshots.get(session.node_id)
        if snapshot is None:
            if session.snapshot is not None:
                stream.outbox.put_nowait(
                    Close(grpc.StatusCode.NOT_FOUND, f"node {session.node_id} left the mesh")
                )
            return
        if snapshot.identity != session.peer_identity:
            reason = _mismatch(snapshot, session.peer_identity)
            self._record_refusal(session.node_id, session.peer_identity, reason)
            stream.outbox.put_nowait(Close(grpc.StatusCode.PERMISSION_DENIED, reason))
            return
        if session.snapshot is snapshot and session.generation == self.generation:
            return
        stream.send(session.set_snapshot(snapshot, self.generation))
        self._want_certificate(session)

    def _own(self) -> set[str]:
        return {self._own_identity} if self._own_identity else set()

    def _want_certificate(self, session: Session) -> None:
        snapshot = session.snapshot
        if snapshot is None:
            return
        self.secrets.want(
            ref.identity
            for ref in snapshot.secrets.values()
            if ref.kind == "certificate" and ref.identity == session.peer_identity
        )

    def _on_secrets(self, identities: frozenset[str], bundle_changed: bool) -> None:
        for stream in self._streams.values():
            session = stream.session
            if bundle_changed or session.peer_identity in identities:
                stream.send(session.refresh_secrets())
        self._notify()

    async def _refuse(
        self, context: StreamContext, node_id: str, identity: str | None, reason: str
    ) -> NoReturn:
        self._record_refusal(node_id, identity, reason)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)

    def _record_refusal(self, node_id: str, identity: str | None, reason: str) -> None:
        log.warning("xds: refused node %r (peer %s): %s", node_id, identity or "unknown", reason)
        self.refusals.append(Refusal(node_id, identity, reason))
        del self.refusals[:-100]
        Counters.bump(self.counters.refused, "identity")

    def _notify(self) -> None:
        """Wake `wait_acked` callers: something they wait on may have changed."""
        self._changed.set()
        self._changed = asyncio.Event()


def _certificate_configuration(tls: ServerTls) -> object:
    return grpc.ssl_server_certificate_configuration(
        [(tls.private_key, tls.certificate_chain)], root_certificates=tls.client_ca
    )


def _certificate_identities(snapshots: Iterable[Snapshot]) -> set[str]:
    """The identities whose certificates some node may fetch (each only its own)."""
    return {
        ref.identity
        for snapshot in snapshots
        for ref in snapshot.secrets.values()
        if ref.kind == "certificate" and ref.identity == snapshot.identity
    }


def _mismatch(snapshot: Snapshot, identity: str) -> str:
    return (
        f"node {snapshot.node_id} runs as {snapshot.identity}, but the client certificate is "
        f"for {identity}"
    )


class _Servicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, server: XdsServer) -> None:
        self._server = server

    async def StreamAggregatedResources(  # the generated names
        self, request_iterator: AsyncIterator[DiscoveryRequest], context: StreamContext
    ) -> AsyncIterator[DiscoveryResponse]:
        async for response in self._server.handle_stream(request_iterator, context):
            yield response

    async def DeltaAggregatedResources(
        self, request_iterator: AsyncIterator[DeltaDiscoveryRequest], context: StreamContext
    ) -> AsyncIterator[DeltaDiscoveryResponse]:
        async for response in self._server.handle_stream(request_iterator, context, delta=True):
            yield response


async def start(
    host: str,
    port: int,
    tls: ServerTls,
    *,
    ca: CertificateAuthority,
    clock: Clock = utc_now,
) -> tuple[XdsServer, int]:
    """Build and start a server; returns it and the port it listens on."""
    server = XdsServer(ca, clock=clock)
    return server, await server.start(host, port, tls)
