"""The server over real gRPC and mutual TLS, with a small client instead of Envoy: ACK,
NACK, an unknown type, changed subscriptions, refused identities, no client certificate."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from envoy.config.core.v3.base_pb2 import Node
from envoy.service.discovery.v3 import ads_pb2_grpc
from envoy.service.discovery.v3.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DiscoveryRequest,
    DiscoveryResponse,
)
from google.rpc.status_pb2 import Status

from compiler.lower.envoy.snapshot import CLUSTER, LISTENER, ROUTE, Snapshot
from reconciler.ca.service import CAService
from reconciler.ca.store import open_store
from reconciler.xds.auth import ServerTls
from reconciler.xds.secrets import to_issued
from reconciler.xds.server import XdsServer
from tests.xds.fakes import run
from tests.xds.support import (
    CONTROL_PLANE,
    Ports,
    direct_listener,
    new_ca,
    plain_snapshot,
    snapshot,
    spiffe,
    static_cluster,
)

PORTS = Ports(http=10001, mtls=10002, backend=10003)
A, B = spiffe("a"), spiffe("b")


def server_tls(ca: CAService) -> ServerTls:
    """The control plane's SVID plus a DNS name: the Python gRPC client checks host names
    (Envoy pins the SPIFFE ID instead, so `server_tls_from_ca` needs none)."""
    store = open_store(ca.path, passphrase=None)
    issuer = store.state.issuer
    intermediate, issuer_key = store.intermediate_cert(issuer), store.intermediate_key(issuer)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(CONTROL_PLANE), x509.DNSName("localhost")]
            ),
            critical=True,
        )
        .sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    chain = cert.public_bytes(Encoding.PEM) + intermediate.public_bytes(Encoding.PEM)
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return ServerTls(chain, key_pem, ca.bundle_pem(now))


class Client:
    """One ADS stream from a client holding `identity`'s certificate (or none)."""

    def __init__(self, ca: CAService, port: int, identity: str | None, node_id: str) -> None:
        bundle = ca.bundle_pem(datetime.now(UTC))
        if identity is None:
            credentials = grpc.ssl_channel_credentials(root_certificates=bundle)
        else:
            issued = to_issued(ca.issue(datetime.now(UTC), identity))
            credentials = grpc.ssl_channel_credentials(
                root_certificates=bundle,
                private_key=issued.key_pem,
                certificate_chain=issued.chain_pem,
            )
        self.channel = grpc.aio.secure_channel(
            f"127.0.0.1:{port}",
            credentials,
            options=[("grpc.ssl_target_name_override", "localhost")],
        )
        self.stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self.node = Node(id=node_id, cluster="demo.default")
        self.outgoing: asyncio.Queue[DiscoveryRequest] = asyncio.Queue()
        self.incoming: asyncio.Queue[DiscoveryResponse] = asyncio.Queue()
        self.error: grpc.aio.AioRpcError | None = None
        self.done = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _requests(self) -> AsyncIterator[DiscoveryRequest]:
        first = True
        while True:
            request = await self.outgoing.get()
            if first:
                request.node.CopyFrom(self.node)
                first = False
            yield request

    async def _run(self) -> None:
        try:
            async for response in self.stub.StreamAggregatedResources(self._requests()):
                await self.incoming.put(response)
        except grpc.aio.AioRpcError as exc:
            self.error = exc
        finally:
            self.done.set()

    def send(self, type_url: str, names: tuple[str, ...] = (), **fields: object) -> None:
        request = DiscoveryRequest(type_url=type_url, resource_names=list(names))
        for key, value in fields.items():
            if key == "error":
                request.error_detail.CopyFrom(Status(code=13, message=str(value)))
            else:
                setattr(request, key, value)
        self.outgoing.put_nowait(request)

    async def recv(self) -> DiscoveryResponse:
        return await asyncio.wait_for(self.incoming.get(), 5)

    async def nothing_for(self, seconds: float) -> bool:
        await asyncio.sleep(seconds)
        return self.incoming.empty()

    async def ended(self) -> grpc.StatusCode:
        await asyncio.wait_for(self.done.wait(), 5)
        assert self.error is not None
        return self.error.code()

    async def close(self) -> None:
        self.task.cancel()
        await self.channel.close()


def cluster_only(timeout_ms: int) -> Snapshot:
    return plain_snapshot("a", A, clusters={"backend": static_cluster("backend", timeout_ms)})


def listeners(*names: str) -> Snapshot:
    found = {name: direct_listener(name, 10100 + i) for i, name in enumerate(names)}
    return plain_snapshot("a", A, listeners=found)


async def serving(tmp_path: Path) -> tuple[CAService, XdsServer, int]:
    ca = new_ca(tmp_path / "ca")
    server = XdsServer(ca)
    port = await server.start("127.0.0.1", 0, server_tls(ca))
    server.set_snapshots({"a": snapshot("a", A, PORTS)})
    return ca, server, port


def test_ack_nack_and_an_unknown_type_over_grpc(tmp_path: Path) -> None:
    async def scenario() -> None:
        ca, server, port = await serving(tmp_path)
        server.set_snapshots({"a": cluster_only(1000)})
        client = Client(ca, port, A, "a")
        try:
            client.send("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", ("x",))
            client.send(CLUSTER)
            cds = await client.recv()
            assert cds.type_url == CLUSTER  # the unknown type got nothing; CDS did
            client.send(CLUSTER, version_info=cds.version_info, response_nonce=cds.nonce)
            assert await client.nothing_for(0.2)
            assert server.status()[0].types["CDS"].state == "SYNCED"

            generation = server.set_snapshots({"a": cluster_only(-1)})
            bad = await client.recv()
            client.send(
                CLUSTER,
                version_info=cds.version_info,
                response_nonce=bad.nonce,
                error="cluster backend: connect_timeout: value must be greater than 0s",
            )
            result = await server.wait_acked(generation, timeout=5)
            assert result.nacked == {
                "a": "cluster backend: connect_timeout: value must be greater than 0s"
            }
            assert await client.nothing_for(0.2)  # not sent again
        finally:
            await client.close()
            await server.stop()

    run(scenario)


def test_changed_subscriptions_over_grpc(tmp_path: Path) -> None:
    async def scenario() -> None:
        ca, server, port = await serving(tmp_path)
        client = Client(ca, port, A, "a")
        try:
            client.send(ROUTE, ("nothing",))
            assert await client.nothing_for(0.2)
            client.send(ROUTE, ("nothing", "routes"))
            rds = await client.recv()
            assert len(rds.resources) == 1
            client.send(ROUTE, ("routes",), version_info=rds.version_info, response_nonce=rds.nonce)
            assert await client.nothing_for(0.2)  # same content for the names it still wants
        finally:
            await client.close()
            await server.stop()

    run(scenario)


def test_another_identity_and_no_certificate_get_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        ca, server, port = await serving(tmp_path)
        intruder = Client(ca, port, B, "a")
        anonymous = Client(ca, port, None, "a")
        try:
            intruder.send(LISTENER)
            assert await intruder.ended() is grpc.StatusCode.PERMISSION_DENIED
            assert intruder.incoming.empty()
            anonymous.send(LISTENER)
            assert await anonymous.ended() is grpc.StatusCode.UNAVAILABLE  # TLS handshake
            assert anonymous.incoming.empty()
            assert [r.peer_identity for r in server.refusals] == [B]
        finally:
            await intruder.close()
            await anonymous.close()
            await server.stop()

    run(scenario)


def test_delta_over_grpc(tmp_path: Path) -> None:
    async def scenario() -> None:
        ca, server, port = await serving(tmp_path)
        server.set_snapshots({"a": listeners("http", "mtls")})
        client = Client(ca, port, A, "a")
        requests: asyncio.Queue[DeltaDiscoveryRequest] = asyncio.Queue()

        async def outgoing() -> AsyncIterator[DeltaDiscoveryRequest]:
            while True:
                yield await requests.get()

        try:
            call = client.stub.DeltaAggregatedResources(outgoing())
            requests.put_nowait(DeltaDiscoveryRequest(node=client.node, type_url=LISTENER))
            lds = await asyncio.wait_for(call.read(), 5)
            assert sorted(r.name for r in lds.resources) == ["http", "mtls"]
            requests.put_nowait(DeltaDiscoveryRequest(type_url=LISTENER, response_nonce=lds.nonce))
            generation = server.set_snapshots({"a": listeners("http")})
            removal = await asyncio.wait_for(call.read(), 5)
            assert list(removal.removed_resources) == ["mtls"] and not removal.resources
            requests.put_nowait(
                DeltaDiscoveryRequest(type_url=LISTENER, response_nonce=removal.nonce)
            )
            assert (await server.wait_acked(generation, timeout=5)).acked == ("a",)
            call.cancel()
        finally:
            await client.close()
            await server.stop()

    run(scenario)


def test_a_taken_port_is_a_clear_oserror(tmp_path: Path) -> None:
    async def scenario() -> None:
        ca = new_ca(tmp_path / "ca")
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            server = XdsServer(ca)
            with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
                await server.start("127.0.0.1", port, server_tls(ca))
            await server.stop()

    run(scenario)
