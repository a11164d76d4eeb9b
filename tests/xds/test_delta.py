"""Delta (incremental) ADS on a fake stream: only what changed is sent, removals are named,
subscriptions arrive as changes, a reconnecting proxy's versions are honoured."""

from __future__ import annotations

import asyncio
from pathlib import Path

from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.extensions.transport_sockets.tls.v3.secret_pb2 import Secret
from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryResponse

from compiler.lower.envoy.snapshot import CLUSTER, ENDPOINTS, LISTENER, ROUTE, SECRET, Snapshot
from reconciler.xds.server import XdsServer
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


def listeners(*ports: int) -> Snapshot:
    """Listeners `one`, `two`... on these ports, naming nothing else."""
    found = {}
    for name, port in zip(("one", "two"), ports, strict=False):
        found[name] = direct_listener(name, port)
    return plain_snapshot("a", A, listeners=found)


def cluster_only(timeout_ms: int) -> Snapshot:
    return plain_snapshot("a", A, clusters={"backend": static_cluster("backend", timeout_ms)})


def names(response: DeltaDiscoveryResponse) -> list[str]:
    return [resource.name for resource in response.resources]


def held(response: DeltaDiscoveryResponse) -> dict[str, str]:
    return {resource.name: resource.version for resource in response.resources}


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.ca = new_ca(tmp_path / "ca")
        self.server = XdsServer(self.ca)
        self.pem = peer_certificate(self.ca, A)

    def stream(self) -> FakeStream:
        return FakeStream(self.server, self.pem, "a", delta=True)


def test_wildcard_types_send_only_what_changed_and_name_what_was_removed(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": listeners(PORTS.http, PORTS.mtls)})
        stream = world.stream()
        stream.send_delta(LISTENER)  # no names: the wildcard
        first = await stream.recv()
        assert sorted(names(first)) == ["one", "two"] and not first.removed_resources
        stream.send_delta(LISTENER, answer=first)
        assert await stream.quiet() == []

        world.server.set_snapshots({"a": listeners(PORTS.http, PORTS.mtls + 100)})
        changed = await stream.recv()
        assert names(changed) == ["two"] and not changed.removed_resources
        listener = Listener()
        changed.resources[0].resource.Unpack(listener)
        assert listener.address.socket_address.port_value == PORTS.mtls + 100
        stream.send_delta(LISTENER, answer=changed)

        generation = world.server.set_snapshots({"a": listeners(PORTS.http)})
        removed = await stream.recv()
        assert names(removed) == [] and list(removed.removed_resources) == ["two"]
        stream.send_delta(LISTENER, answer=removed)
        result = await world.server.wait_acked(generation, timeout=2)
        assert result.acked == ("a",)
        assert world.server.status()[0].types["LDS"].state == "SYNCED"
        await stream.close()

    run(scenario)


def test_named_types_follow_subscribe_and_unsubscribe_even_with_a_stale_nonce(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream()
        stream.send_delta(ROUTE, ["routes", "missing"])
        rds = await stream.recv()
        assert names(rds) == ["routes"]
        stream.send_delta(ROUTE, answer=rds)
        stream.send_delta(ROUTE, unsubscribe=["routes"], answer=rds)  # an old nonce by now
        assert await stream.quiet() == []
        stream.send_delta(ROUTE, ["routes"], answer=rds)  # stale nonce, but a real change
        again = await stream.recv()
        assert names(again) == ["routes"] and again.nonce != rds.nonce
        await stream.close()

    run(scenario)


def test_a_reconnecting_proxy_gets_only_what_it_does_not_have(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        first = world.stream()
        first.send_delta(CLUSTER)
        cds = await first.recv()
        await first.close()
        world.server.set_snapshots({"a": snapshot("a", A, PORTS, with_mtls=False)})

        second = world.stream()
        second.send_delta(CLUSTER, held=held(cds))
        assert await second.quiet() == []  # it has the cluster in this very version
        second.send_delta(LISTENER, held={"http": "old", "mtls": "old", "gone": "x"})
        lds = await second.recv()
        assert names(lds) == ["http"] and sorted(lds.removed_resources) == ["gone", "mtls"]
        await second.close()

    run(scenario)


def test_a_nack_is_recorded_and_not_resent(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": cluster_only(1000)})
        stream = world.stream()
        stream.send_delta(CLUSTER)
        good = await stream.recv()
        stream.send_delta(CLUSTER, answer=good)
        await asyncio.sleep(0.01)
        generation = world.server.set_snapshots({"a": cluster_only(-1)})
        bad = await stream.recv()
        stream.send_delta(CLUSTER, answer=bad, error="Expected positive duration")
        result = await world.server.wait_acked(generation, timeout=2)
        assert result.nacked == {"a": "Expected positive duration"}
        cds = world.server.status()[0].types["CDS"]
        assert cds.state == "NACKED" and cds.acked_version == good.system_version_info
        world.server.set_snapshots({"a": cluster_only(-1)})
        assert await stream.quiet() == []
        await stream.close()

    run(scenario)


def test_a_changed_eds_cluster_gets_its_endpoints_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream()
        stream.send_delta(CLUSTER)
        cds = await stream.recv()
        stream.send_delta(CLUSTER, answer=cds)
        stream.send_delta(ENDPOINTS, ["backend"])
        eds = await stream.recv()
        stream.send_delta(ENDPOINTS, answer=eds)
        await asyncio.sleep(0.01)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS, cluster=eds_cluster(3000))})
        pushed = [await stream.recv(), await stream.recv()]
        assert [r.type_url for r in pushed] == [CLUSTER, ENDPOINTS]
        assert names(pushed[1]) == ["backend"] and held(pushed[1]) == held(eds)
        await stream.close()

    run(scenario)


def test_sds_renewal_sends_only_the_certificate(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = world.stream()
        stream.send_delta(SECRET, ["default", "ROOTCA", "stolen"])
        await world.server.secrets.refresh()
        sds = await stream.recv()
        assert sorted(names(sds)) == ["ROOTCA", "default"]
        stream.send_delta(SECRET, answer=sds)
        del world.server.secrets.certificates[A]  # as if expired: the next refresh re-issues
        await world.server.secrets.refresh()
        renewed = await stream.recv()
        assert names(renewed) == ["default"]
        secret = Secret()
        renewed.resources[0].resource.Unpack(secret)
        assert held(renewed)["default"] != held(sds)["default"]
        assert b"PRIVATE KEY" in secret.tls_certificate.private_key.inline_bytes
        assert 'meshd_xds_refused_total{reason="secret"} 1' in world.server.metrics_text()
        await stream.close()

    run(scenario)
