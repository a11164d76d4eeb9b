"""The ADS rules on a fake stream (no network, no Envoy): what is sent, when, and to whom."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment
from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.config.route.v3.route_pb2 import RouteConfiguration
from envoy.extensions.transport_sockets.tls.v3.secret_pb2 import Secret
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryResponse

from compiler.kinds.mesh.anchors import fingerprint
from compiler.lower.envoy.snapshot import (
    CLUSTER,
    ENDPOINTS,
    LISTENER,
    ROUTE,
    SECRET,
    SecretRef,
    Snapshot,
)
from reconciler.xds.server import XdsServer
from reconciler.xds.status import status_table
from tests.xds.fakes import FakeStream, peer_certificate, run
from tests.xds.support import (
    Ports,
    direct_listener,
    eds_cluster,
    new_ca,
    plain_snapshot,
    snapshot,
    spiffe,
    static_cluster,
)

PORTS = Ports(http=10001, mtls=10002, backend=10003)
A = spiffe("a")
B = spiffe("b")


def clusters_only(timeout_ms: int) -> Snapshot:
    return plain_snapshot("a", A, clusters={"backend": static_cluster("backend", timeout_ms)})


def listeners_only() -> Snapshot:
    return plain_snapshot("a", A, listeners={"http": direct_listener("http", PORTS.http)})


def names(response: DiscoveryResponse, cls: type) -> list[str]:
    found = []
    for packed in response.resources:
        message = cls()
        packed.Unpack(message)
        found.append(getattr(message, "name", "") or getattr(message, "cluster_name", ""))
    return found


def unpack(response: DiscoveryResponse, cls: type) -> list:  # type: ignore[type-arg]
    found = []
    for packed in response.resources:
        message = cls()
        packed.Unpack(message)
        found.append(message)
    return found


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.ca = new_ca(tmp_path / "ca")
        self.server = XdsServer(self.ca)
        self.pem = {A: peer_certificate(self.ca, A), B: peer_certificate(self.ca, B)}

    def stream(self, identity: str | None, node_id: str = "a") -> FakeStream:
        return FakeStream(self.server, self.pem[identity] if identity else None, node_id)


def test_wildcard_types_carry_everything_and_named_types_only_what_is_asked(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream(A)
        stream.send(CLUSTER)
        cds = await stream.recv()
        assert cds.type_url == CLUSTER and names(cds, Cluster) == ["backend"]
        stream.ack(cds)
        stream.send(ENDPOINTS, ["backend", "not-there"])
        eds = await stream.recv()
        assert names(eds, ClusterLoadAssignment) == ["backend"]
        stream.ack(eds, ["backend", "not-there"])
        stream.send(LISTENER, ["ignored"])
        lds = await stream.recv()
        assert sorted(names(lds, Listener)) == ["http", "mtls"]
        stream.ack(lds)
        assert await stream.quiet() == []  # every answer was an ACK of unchanged content
        status = world.server.status()[0]
        assert {t: s.state for t, s in status.types.items()} == {
            "LDS": "SYNCED",
            "CDS": "SYNCED",
            "EDS": "SYNCED",
        }
        assert status.types["CDS"].acked_version == snapshot("a", A, PORTS).version(CLUSTER)
        await stream.close()

    run(scenario)


def test_a_changed_subscription_gets_a_response_and_an_unchanged_one_does_not(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream(A)
        stream.send(ROUTE, ["missing"])
        assert await stream.quiet() == []  # nothing it asks for exists: no answer
        stream.send(ROUTE, ["routes"])
        rds = await stream.recv()
        assert names(rds, RouteConfiguration) == ["routes"]
        stream.ack(rds, ["routes"])
        assert await stream.quiet() == []
        stream.send(ROUTE, [], answer=rds)  # unsubscribes everything
        assert await stream.quiet() == []
        stream.send(ROUTE, ["routes"])  # and back: sent again, Envoy dropped it
        again = await stream.recv()
        assert names(again, RouteConfiguration) == ["routes"] and again.nonce != rds.nonce
        await stream.close()

    run(scenario)


def test_a_nack_is_recorded_not_resent_and_the_next_change_is_pushed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": clusters_only(1000)})
        stream = world.stream(A)
        stream.send(CLUSTER)
        good = await stream.recv()
        stream.ack(good)
        await asyncio.sleep(0.01)
        generation = world.server.set_snapshots({"a": clusters_only(-5)})
        bad = await stream.recv()
        assert bad.version_info != good.version_info
        stream.send(
            CLUSTER,
            answer=bad,
            error="Proto constraint validation failed",
            version=good.version_info,
        )
        result = await world.server.wait_acked(generation, timeout=2)
        assert result.complete and result.nacked == {"a": "Proto constraint validation failed"}
        assert await stream.quiet() == []  # the rejected version is not sent again
        stream.send(CLUSTER, answer=bad, error="again", version=good.version_info)
        assert await stream.quiet() == []  # a repeated NACK of the same nonce changes nothing
        cds = world.server.status()[0].types["CDS"]
        assert cds.state == "NACKED" and cds.acked_version == good.version_info
        assert cds.pushed_version == bad.version_info
        table = status_table(world.server.status())
        assert "NACKED" in table and "CDS rejected: Proto constraint validation failed" in table
        assert 'meshd_xds_nacks_total{type="CDS"} 1' in world.server.metrics_text()
        assert "rejected CDS version" in caplog.text

        fixed = world.server.set_snapshots({"a": clusters_only(2000)})
        pushed = await stream.recv()
        stream.ack(pushed)
        result = await world.server.wait_acked(fixed, timeout=2)
        assert result.acked == ("a",) and result.nacked == {}
        assert world.server.status()[0].types["CDS"].state == "SYNCED"
        await stream.close()

    caplog.set_level(logging.INFO, "meshd.xds")
    run(scenario)


def test_a_stale_nonce_is_ignored(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream(A)
        stream.send(ROUTE, ["routes"])
        first = await stream.recv()
        world.server.set_snapshots({"a": snapshot("a", A, PORTS, body="v2")})
        second = await stream.recv()
        stream.send(ROUTE, ["routes"], answer=first, error="old news")  # answers the old nonce
        assert await stream.quiet() == []
        state = world.server.status()[0].types["RDS"]
        assert state.state == "STALE" and state.nack_message is None
        stream.ack(second, ["routes"])
        await asyncio.sleep(0.01)
        assert world.server.status()[0].types["RDS"].state == "SYNCED"
        await stream.close()

    run(scenario)


def test_an_unchanged_generation_pushes_nothing_and_counts_as_applied(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": listeners_only()})
        stream = world.stream(A)
        stream.send(LISTENER)
        stream.ack(await stream.recv())
        generation = world.server.set_snapshots({"a": listeners_only()})
        assert await stream.quiet() == []
        result = await world.server.wait_acked(generation, timeout=0.5)
        assert result.complete and result.acked == ("a",)
        await stream.close()

    run(scenario)


def test_wait_acked_times_out_listing_the_silent_proxy(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS), "c": snapshot("c", B, PORTS)})
        stream = world.stream(A)
        stream.send(LISTENER)
        await stream.recv()  # never answered
        result = await world.server.wait_acked(world.server.generation, timeout=0.2)
        assert not result.complete and result.pending == ("a",)
        assert result.disconnected == ("c",)
        await stream.close()

    run(scenario)


def test_a_cds_change_to_an_eds_cluster_resends_its_endpoints(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream(A)
        stream.send(CLUSTER)
        cds = await stream.recv()
        stream.ack(cds)
        stream.send(ENDPOINTS, ["backend"])
        eds = await stream.recv()
        stream.ack(eds, ["backend"])
        world.server.set_snapshots({"a": snapshot("a", A, PORTS, cluster=eds_cluster(3000))})
        pushed = [await stream.recv(), await stream.recv()]
        assert [r.type_url for r in pushed] == [CLUSTER, ENDPOINTS]
        assert pushed[1].version_info == eds.version_info  # same endpoints, sent again
        assert names(pushed[1], ClusterLoadAssignment) == ["backend"]
        await stream.close()

    run(scenario)


def test_an_unknown_type_gets_no_answer(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream(A)
        stream.send("type.googleapis.com/envoy.service.runtime.v3.Runtime", ["x"])
        assert await stream.quiet() == []
        assert 'meshd_xds_refused_total{reason="type"} 1' in world.server.metrics_text()
        stream.send(LISTENER)
        assert (await stream.recv()).type_url == LISTENER  # the stream is still fine
        await stream.close()

    run(scenario)


def test_a_node_claiming_another_identity_gets_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream(B, node_id="a")  # B's certificate, A's node id
        stream.send(SECRET, ["default", "ROOTCA"])
        await asyncio.wait_for(stream.ended.wait(), 2)
        assert stream.error is not None and stream.error.code is grpc.StatusCode.PERMISSION_DENIED
        assert A in stream.error.details and B in stream.error.details
        assert stream.responses.empty()
        assert world.server.refusals[-1].node_id == "a"
        assert 'meshd_xds_refused_total{reason="identity"} 1' in world.server.metrics_text()

        nobody = world.stream(None)  # no client certificate at all
        nobody.send(LISTENER)
        await asyncio.wait_for(nobody.ended.wait(), 2)
        assert nobody.error is not None and nobody.error.code is grpc.StatusCode.PERMISSION_DENIED
        assert nobody.responses.empty()

    caplog.set_level(logging.INFO, "meshd.xds")
    run(scenario)
    assert "refused node 'a'" in caplog.text


def test_a_waiting_node_is_refused_when_its_snapshot_names_another_identity(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        stream = world.stream(B, node_id="a")  # connects before any snapshot exists
        stream.send(LISTENER)
        assert await stream.quiet() == []
        assert status_table(world.server.status()).splitlines()[1].split()[2] == "WAITING"
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        await asyncio.wait_for(stream.ended.wait(), 2)
        assert stream.error is not None and stream.error.code is grpc.StatusCode.PERMISSION_DENIED
        assert stream.responses.empty()

    run(scenario)


def test_sds_serves_the_nodes_own_certificate_and_the_bundle_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.start_secret_refresh()
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream(A)
        stream.send(SECRET, ["default", "ROOTCA", "someone-else"])
        sds = await stream.recv()
        secrets = {s.name: s for s in unpack(sds, Secret)}
        assert sorted(secrets) == ["ROOTCA", "default"]
        leaf = x509.load_pem_x509_certificate(
            secrets["default"].tls_certificate.certificate_chain.inline_bytes
        )
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [A]
        assert b"PRIVATE KEY" in secrets["default"].tls_certificate.private_key.inline_bytes
        assert b"CERTIFICATE" in secrets["ROOTCA"].validation_context.trusted_ca.inline_bytes
        stream.ack(sds, ["default", "ROOTCA", "someone-else"])
        await asyncio.sleep(0.01)
        assert 'meshd_xds_refused_total{reason="secret"} 1' in world.server.metrics_text()
        consumer = world.server.trust_consumer("edge-proxies")
        roots = x509.load_pem_x509_certificates(world.ca.bundle_pem(datetime.now(UTC)))
        assert consumer.trusted_fingerprints() == {fingerprint(r) for r in roots}
        outputs = [
            caplog.text,
            world.server.metrics_text(),
            status_table(world.server.status()),
            repr(world.server.secrets.certificates),
            repr(world.server.status()),
            repr(world.server),
        ]
        key_pem = world.server.secrets.certificates[A].key_pem.decode()
        key_body = "".join(line for line in key_pem.splitlines() if "-----" not in line)
        for text in outputs:
            assert "PRIVATE KEY" not in text and key_body[:40] not in text.replace("\n", "")
        await stream.close()
        await world.server.stop()

    caplog.set_level(logging.DEBUG, "meshd.xds")
    run(scenario)


def test_a_node_that_leaves_the_mesh_is_disconnected_and_its_certificate_forgotten(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream(A)
        stream.send(SECRET, ["default"])
        await world.server.secrets.refresh()
        stream.ack(await stream.recv(), ["default"])
        assert A in world.server.secrets.certificates
        world.server.set_snapshots({})
        await asyncio.wait_for(stream.ended.wait(), 2)
        assert stream.error is not None and stream.error.code is grpc.StatusCode.NOT_FOUND
        assert world.server.status() == [] and world.server.secrets.certificates == {}
        assert "meshd_xds_connected_proxies 0" in world.server.metrics_text()

    run(scenario)


def test_a_reconnecting_node_gets_its_last_accepted_version_not_the_rejected_one(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": clusters_only(1000)})
        first = world.stream(A)
        first.send(CLUSTER)
        good = await first.recv()
        first.ack(good)
        await asyncio.sleep(0.01)
        bad_generation = world.server.set_snapshots({"a": clusters_only(-1)})
        bad = await first.recv()
        first.send(CLUSTER, answer=bad, error="negative timeout", version=good.version_info)
        await first.close()

        second = world.stream(A)  # a restarted Envoy: no config at all
        second.send(CLUSTER)
        served = await second.recv()
        assert served.version_info == good.version_info
        assert unpack(served, Cluster)[0].connect_timeout.seconds == 1
        second.ack(served)
        result = await world.server.wait_acked(bad_generation, timeout=2)
        assert result.nacked == {"a": "negative timeout"}  # still reported
        assert world.server.status()[0].types["CDS"].state == "NACKED"
        assert await second.quiet() == []

        fixed = world.server.set_snapshots({"a": clusters_only(4000)})
        pushed = await second.recv()
        assert unpack(pushed, Cluster)[0].connect_timeout.seconds == 4
        second.ack(pushed)
        result = await world.server.wait_acked(fixed, timeout=2)
        assert result.acked == ("a",) and world.server.status()[0].types["CDS"].state == "SYNCED"
        await second.close()

    run(scenario)


def test_wait_acked_can_wait_for_a_proxy_that_has_not_connected_yet(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        generation = world.server.set_snapshots({"a": listeners_only()})
        assert (await world.server.wait_acked(generation, timeout=1)).disconnected == ("a",)

        async def proxy_starts_later() -> None:
            await asyncio.sleep(0.1)
            stream = world.stream(A)
            stream.send(LISTENER)
            stream.ack(await stream.recv())

        later = asyncio.get_running_loop().create_task(proxy_starts_later())
        result = await world.server.wait_acked(generation, timeout=5, wait_for_connect=True)
        assert result.acked == ("a",) and result.disconnected == ()
        await later

    run(scenario)


def test_a_snapshot_cannot_hand_a_node_another_identitys_certificate(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        wrong = dataclasses.replace(
            snapshot("a", A, PORTS),
            secrets={
                "default": SecretRef("certificate", B),
                "ROOTCA": SecretRef("trust-bundle", ""),
            },
        )
        world.server.set_snapshots({"a": wrong})
        stream = world.stream(A)
        stream.send(SECRET, ["default", "ROOTCA"])
        await world.server.secrets.refresh()
        sds = await stream.recv()
        assert [s.name for s in unpack(sds, Secret)] == ["ROOTCA"]  # never B's key
        assert B not in world.server.secrets.certificates
        assert 'meshd_xds_refused_total{reason="secret"} 1' in world.server.metrics_text()
        await stream.close()

    run(scenario)


def test_a_node_has_not_applied_its_snapshot_until_it_asked_for_what_it_names(
    tmp_path: Path,
) -> None:
    """Envoy asks for endpoints, routes and secrets in requests after it ACKs the clusters
    and listeners naming them: between the two it has not applied the snapshot."""

    async def scenario() -> None:
        world = World(tmp_path)
        world.server.start_secret_refresh()
        generation = world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream(A)
        stream.send(CLUSTER)
        stream.ack(await stream.recv())
        stream.send(LISTENER)
        stream.ack(await stream.recv())
        result = await world.server.wait_acked(generation, timeout=0.3)
        assert result.pending == ("a",)  # everything sent was ACKed, but RDS/EDS/SDS wait
        stream.send(ENDPOINTS, ["backend"])
        stream.ack(await stream.recv(), ["backend"])
        stream.send(ROUTE, ["routes"])
        stream.ack(await stream.recv(), ["routes"])
        assert (await world.server.wait_acked(generation, timeout=0.3)).pending == ("a",)
        stream.send(SECRET, ["default", "ROOTCA"])
        stream.ack(await stream.recv(), ["default", "ROOTCA"])
        result = await world.server.wait_acked(generation, timeout=2)
        assert result.acked == ("a",)
        await stream.close()
        await world.server.stop()

    run(scenario)
