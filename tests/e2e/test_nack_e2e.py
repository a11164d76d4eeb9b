"""A configuration Envoy rejects leaves traffic flowing on the previous one, and is reported.

meshc's own output is meant never to be rejected (lint refuses what Envoy would), so a
policy edit cannot produce a NACK; this test makes one on purpose. It runs the control
plane in-process with bookinfo's compiled snapshots for productpage and details on two real
Envoys, pushes productpage a snapshot whose outbound routes carry a regex RE2 cannot
compile, and checks: the push is NACKed with Envoy's message, the status table and the
metrics say so, productpage → details keeps answering through the previous routes, and
the next good snapshot is ACKed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from envoy.config.route.v3.route_components_pb2 import (
    DirectResponseAction,
    Route,
    RouteMatch,
)
from envoy.config.route.v3.route_pb2 import RouteConfiguration
from envoy.type.matcher.v3.regex_pb2 import RegexMatcher

from compiler.api import compile_tree, load_tree
from compiler.lower.envoy import envoy_snapshots
from compiler.lower.envoy.snapshot import ROUTE, Snapshot
from compiler.model.mesh import ServiceKey
from compiler.model.placement import Address, InstancePlacement
from reconciler.xds import XdsServer, bootstrap, server_tls_from_ca, write_client_files
from reconciler.xds.status import status_table
from tests.e2e.mesh import LOCAL, new_store
from tests.helpers import NOW, REPO
from tests.xds.fakes import run
from tests.xds.support import run_envoy

CONTROL_PLANE = "spiffe://cluster.local/ns/meshd/sa/control-plane"
PRODUCTPAGE = "productpage.bookinfo~v1~0"
DETAILS = "details.bookinfo~v1~0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return int(sock.getsockname()[1])


class _Details(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"details"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def details_app() -> Iterator[int]:
    server = ThreadingHTTPServer((LOCAL, 0), _Details)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _snapshots(app_port: int, outbound: int) -> dict[str, Snapshot]:
    placement = {
        DETAILS: InstancePlacement(
            ServiceKey("bookinfo", "details"),
            "v1",
            0,
            inbound={9080: Address(LOCAL, free_port())},
            app={9080: Address(LOCAL, app_port)},
        ),
        PRODUCTPAGE: InstancePlacement(
            ServiceKey("bookinfo", "productpage"),
            "v1",
            0,
            inbound={9080: Address(LOCAL, free_port())},
            app={9080: Address(LOCAL, free_port())},
            outbound=Address(LOCAL, outbound),
        ),
    }
    compilation = compile_tree(load_tree(REPO / "policies"), now=NOW, placement=placement)
    assert compilation.ok
    return dict(compilation.engine().query(envoy_snapshots))


def _rejected(snapshot: Snapshot) -> Snapshot:
    """The snapshot with a route RE2 cannot compile in front of each route table."""
    routes: dict[str, RouteConfiguration] = {}
    for name, resource in snapshot.resources[ROUTE].items():
        broken = RouteConfiguration()
        broken.CopyFrom(resource)
        for host in broken.virtual_hosts:
            bad = Route(
                match=RouteMatch(safe_regex=RegexMatcher(regex="([a-z")),
                direct_response=DirectResponseAction(status=418),
            )
            host.routes.insert(0, bad)
        routes[name] = broken
    resources = {**snapshot.resources, ROUTE: routes}
    return Snapshot(
        snapshot.node_id, snapshot.cluster, snapshot.identity, resources, snapshot.secrets
    )


def _get_details(outbound: int) -> int:
    connection = http.client.HTTPConnection(LOCAL, outbound, timeout=5)
    try:
        connection.request("GET", "/details/0", headers={"host": "details:9080"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


async def _until(check: object, expected: int, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await asyncio.to_thread(check)  # type: ignore[arg-type]
            if last == expected:
                return
        except OSError as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {expected}, last saw {last!r}")


def test_a_rejected_config_keeps_the_previous_one_serving_and_is_reported(
    tmp_path: Path, details_app: int
) -> None:
    outbound = free_port()
    good = _snapshots(details_app, outbound)
    ca = new_store(tmp_path / "ca", "cluster.local")

    async def scenario() -> None:
        server = XdsServer(ca)
        tls = server_tls_from_ca(ca, datetime.now(UTC), CONTROL_PLANE)
        port = await server.start(LOCAL, 0, tls)
        try:
            with contextlib.ExitStack() as envoys:
                for node_id, snapshot in good.items():
                    files = write_client_files(
                        ca, datetime.now(UTC), snapshot.identity, tmp_path / node_id
                    )
                    config = bootstrap(
                        node_id=node_id,
                        cluster=snapshot.cluster,
                        xds_address=LOCAL,
                        xds_port=port,
                        control_plane_identity=CONTROL_PLANE,
                        files=files,
                        admin_port=0,
                    )
                    envoys.enter_context(run_envoy(config, tmp_path / f"{node_id}-envoy"))
                first = server.set_snapshots(good)
                converged = await server.wait_acked(first, timeout=30, wait_for_connect=True)
                assert set(converged.acked) == set(good) and not converged.nacked
                await _until(lambda: _get_details(outbound), 200)

                rejected = server.set_snapshots({**good, PRODUCTPAGE: _rejected(good[PRODUCTPAGE])})
                result = await server.wait_acked(rejected, timeout=30)
                assert set(result.nacked) == {PRODUCTPAGE}, result
                assert "[a-z" in result.nacked[PRODUCTPAGE]
                assert await asyncio.to_thread(_get_details, outbound) == 200
                table = status_table(server.status())
                line = next(row for row in table.splitlines() if row.startswith(PRODUCTPAGE))
                assert "NACKED" in line, table
                assert 'meshd_xds_nacks_total{type="RDS"} 1' in server.metrics_text()

                fixed = server.set_snapshots(good)
                again = await server.wait_acked(fixed, timeout=30)
                assert PRODUCTPAGE in again.acked and not again.nacked
                assert await asyncio.to_thread(_get_details, outbound) == 200
        finally:
            await server.stop()

    run(scenario, timeout=90)
