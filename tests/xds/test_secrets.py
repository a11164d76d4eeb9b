"""SDS material over time: renewal at half life, a rotated bundle pushed, and the proxies'
ACK of the new bundle opening gate 1 of the CA rotation."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from envoy.extensions.transport_sockets.tls.v3.secret_pb2 import Secret
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryResponse

from compiler.lower.envoy.snapshot import SECRET
from reconciler.ca.rotation import start_rotation
from reconciler.ca.service import CAService
from reconciler.xds.secrets import IssuedCertificate
from reconciler.xds.server import XdsServer
from tests.ca.support import git_trusting, new_store, reopen
from tests.helpers import NOW
from tests.xds.fakes import FakeStream, peer_certificate, run
from tests.xds.support import Ports, snapshot, spiffe

A = spiffe("a")
PORTS = Ports(http=10001, mtls=10002, backend=10003)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def secrets(response: DiscoveryResponse) -> dict[str, Secret]:
    found = {}
    for packed in response.resources:
        secret = Secret()
        packed.Unpack(secret)
        found[secret.name] = secret
    return found


def serial(secret: Secret) -> int:
    chain = secret.tls_certificate.certificate_chain.inline_bytes
    return x509.load_pem_x509_certificate(chain).serial_number


def roots(secret: Secret) -> int:
    return len(x509.load_pem_x509_certificates(secret.validation_context.trusted_ca.inline_bytes))


def test_certificates_renew_at_half_life_and_a_rotated_bundle_opens_gate_one(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path / "ca", consumers=("edge-proxies",))
    ca = CAService(store.path)
    clock = Clock()

    async def scenario() -> None:
        server = XdsServer(ca, clock=clock)
        server.set_snapshots({"a": snapshot("a", A, PORTS)})
        stream = FakeStream(server, peer_certificate(ca, A), "a")
        stream.send(SECRET, ["default", "ROOTCA"])
        assert await stream.quiet() == []  # the certificate is not issued yet: no half answer
        await server.secrets.refresh()
        first = await stream.recv()
        stream.ack(first, ["default", "ROOTCA"])
        await asyncio.sleep(0.01)
        issued: IssuedCertificate = server.secrets.certificates[A]
        assert NOW + timedelta(hours=11) < issued.renew_at < NOW + timedelta(hours=13)
        assert "meshd_xds_certificate_expiry_timestamp_seconds" in server.metrics_text()

        clock.now = NOW + timedelta(hours=6)
        await server.secrets.refresh()
        assert await stream.quiet() == []  # not due yet

        clock.now = NOW + timedelta(hours=13)
        await server.secrets.refresh()
        renewed = await stream.recv()
        assert serial(secrets(renewed)["default"]) != serial(secrets(first)["default"])
        assert renewed.version_info != first.version_info
        stream.ack(renewed, ["default", "ROOTCA"])
        await asyncio.sleep(0.01)

        consumer = server.trust_consumer("edge-proxies")
        start_rotation(reopen(store), now=clock.now, new_name="root-2")
        assert ca.reconcile(clock.now, [consumer], git_trusting(reopen(store))) == []
        await server.secrets.refresh()
        rotated = await stream.recv()
        assert roots(secrets(rotated)["ROOTCA"]) == 2
        assert server.trust_consumer("edge-proxies").fingerprints == consumer.fingerprints
        stream.ack(rotated, ["default", "ROOTCA"])
        await asyncio.sleep(0.01)
        report = server.trust_consumer("edge-proxies")
        assert len(report.trusted_fingerprints()) == 2
        [step] = ca.reconcile(clock.now, [report], git_trusting(reopen(store)))
        assert "issue-from-new" in step
        await stream.close()

    run(scenario)


def test_a_failing_ca_keeps_the_last_certificate_and_reports_without_key_material(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path / "ca")
    ca = CAService(store.path)
    clock = Clock()

    async def scenario() -> None:
        server = XdsServer(ca, clock=clock)
        server.secrets.want([A])
        await server.secrets.refresh()
        before = server.secrets.certificates[A]
        clock.now = NOW + timedelta(days=3650 * 2)  # past the root's life: the CA refuses
        await server.secrets.refresh()
        assert server.secrets.certificates[A] is before
        assert server.secrets.errors and all(
            "PRIVATE" not in message for message in server.secrets.errors.values()
        )
        assert server.secrets.next_check() <= 1.0  # retried soon

    run(scenario)
