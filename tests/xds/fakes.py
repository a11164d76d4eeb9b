"""A fake ADS stream: requests in, responses out, through `XdsServer.handle_stream` with no
network, so the protocol rules are checked in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

import grpc
from cryptography.hazmat.primitives.serialization import Encoding
from envoy.config.core.v3.base_pb2 import Node
from envoy.service.discovery.v3.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
)
from google.rpc.status_pb2 import Status

from reconciler.ca.service import CAService
from reconciler.xds.server import XdsServer

T = TypeVar("T")


def run(coroutine: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine(), timeout)

    return asyncio.run(bounded())


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class FakeContext:
    def __init__(self, peer_pem: bytes | None) -> None:
        self.peer_pem = peer_pem

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        return {"x509_pem_cert": [self.peer_pem]} if self.peer_pem else {}

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        raise Aborted(code, details)


def peer_certificate(ca: CAService, spiffe_id: str) -> bytes:
    """What gRPC's auth context holds for a client that presented this identity's SVID."""
    from datetime import UTC, datetime

    return ca.issue(datetime.now(UTC), spiffe_id).chain[0].public_bytes(Encoding.PEM)


class FakeStream:
    """One proxy's stream to `server`; `send` a request, `recv` the next response."""

    def __init__(
        self, server: XdsServer, peer_pem: bytes | None, node_id: str, *, delta: bool = False
    ) -> None:
        self.delta = delta
        self.node = Node(id=node_id, cluster="demo.default")
        self.requests: asyncio.Queue[DiscoveryRequest | None] = asyncio.Queue()
        self.responses: asyncio.Queue[DiscoveryResponse] = asyncio.Queue()
        self.error: Aborted | None = None
        self.ended = asyncio.Event()
        self.last: dict[str, DiscoveryResponse] = {}
        context = FakeContext(peer_pem)
        self.task = asyncio.get_running_loop().create_task(self._run(server, context))
        self.first = True

    async def _requests(self) -> AsyncIterator[DiscoveryRequest]:
        while (request := await self.requests.get()) is not None:
            yield request

    async def _run(self, server: XdsServer, context: Any) -> None:
        try:
            responses = server.handle_stream(self._requests(), context, delta=self.delta)
            async for response in responses:
                self.last[response.type_url] = response
                await self.responses.put(response)
        except Aborted as exc:
            self.error = exc
        finally:
            self.ended.set()

    def send(
        self,
        type_url: str,
        names: Sequence[str] = (),
        *,
        answer: DiscoveryResponse | None = None,
        error: str | None = None,
        version: str | None = None,
    ) -> None:
        """A request; with `answer`, an ACK of it (or a NACK with `error`)."""
        request = DiscoveryRequest(type_url=type_url, resource_names=list(names))
        if self.first:
            request.node.CopyFrom(self.node)
            self.first = False
        if answer is not None:
            request.response_nonce = answer.nonce
            request.version_info = answer.version_info if error is None else (version or "")
            if error is not None:
                request.error_detail.CopyFrom(Status(code=3, message=error))
        self.requests.put_nowait(request)

    def send_delta(
        self,
        type_url: str,
        subscribe: Sequence[str] = (),
        unsubscribe: Sequence[str] = (),
        *,
        answer: DeltaDiscoveryResponse | None = None,
        error: str | None = None,
        held: Mapping[str, str] | None = None,
    ) -> None:
        """A delta request: subscription changes, and the answer to `answer` (a NACK with
        `error`); `held` is what a reconnecting proxy reports it has."""
        request = DeltaDiscoveryRequest(
            type_url=type_url,
            resource_names_subscribe=list(subscribe),
            resource_names_unsubscribe=list(unsubscribe),
            initial_resource_versions=dict(held or {}),
        )
        if self.first:
            request.node.CopyFrom(self.node)
            self.first = False
        if answer is not None:
            request.response_nonce = answer.nonce
            if error is not None:
                request.error_detail.CopyFrom(Status(code=3, message=error))
        self.requests.put_nowait(request)  # type: ignore[arg-type]

    def ack(self, response: DiscoveryResponse, names: Sequence[str] = ()) -> None:
        self.send(response.type_url, names, answer=response)

    async def recv(self, timeout: float = 2.0) -> DiscoveryResponse:
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def quiet(self, wait: float = 0.05) -> list[DiscoveryResponse]:
        """Whatever arrives within `wait` seconds (the tests expect nothing, usually)."""
        await asyncio.sleep(wait)
        found = []
        while not self.responses.empty():
            found.append(self.responses.get_nowait())
        return found

    async def close(self) -> None:
        self.requests.put_nowait(None)
        await asyncio.wait_for(self.ended.wait(), 2)
