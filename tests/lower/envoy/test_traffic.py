"""Real traffic through two real Envoys running bookinfo's productpage and details
snapshots (made static, with test certificates from one root): a declared, allowed call
answers 200; a method or path the AccessPolicy does not allow gets 403 from the server's
RBAC, naming the reason; an undeclared destination gets 404 (no route) from the caller's
own sidecar; a connection without a client certificate is refused."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.model.mesh import ServiceKey
from compiler.model.placement import Address, InstancePlacement
from tests.lower.envoy.support import (
    TestAuthority,
    compile_placed,
    envoy_binary,
    snapshots_of,
    static_bootstrap,
)
from tests.lower.support import BOOKINFO

LOCAL = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCAL, 0))
        port: int = probe.getsockname()[1]
        return port


class _Answer(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        body = b"details"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _reply
    do_POST = _reply

    def log_message(self, format: str, *args: object) -> None:
        return


def _wait_for(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOCAL, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    ports = {name: free_port() for name in ("app", "details", "productpage", "outbound")}
    app = ThreadingHTTPServer((LOCAL, ports["app"]), _Answer)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    bookinfo = ServiceKey("bookinfo", "details")
    placement = {
        "details.bookinfo~v1~0": InstancePlacement(
            bookinfo,
            "v1",
            0,
            inbound={9080: Address(LOCAL, ports["details"])},
            app={9080: Address(LOCAL, ports["app"])},
        ),
        "productpage.bookinfo~v1~0": InstancePlacement(
            ServiceKey("bookinfo", "productpage"),
            "v1",
            0,
            inbound={9080: Address(LOCAL, ports["productpage"])},
            app={9080: Address(LOCAL, ports["app"])},
            outbound=Address(LOCAL, ports["outbound"]),
        ),
    }
    snapshots = snapshots_of(compile_placed(BOOKINFO, placement=placement))
    authority = TestAuthority()
    tmp = tmp_path_factory.mktemp("envoys")
    processes = []
    try:
        for node, snapshot in snapshots.items():
            path = tmp / f"{node}.json"
            bootstrap = static_bootstrap(snapshot, authority.issue(snapshot.identity))
            path.write_text(json.dumps(bootstrap))
            processes.append(
                subprocess.Popen(
                    [
                        str(envoy_binary()),
                        "-c",
                        str(path),
                        "--disable-hot-restart",
                        "--concurrency",
                        "1",
                        "-l",
                        "error",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=(tmp / f"{node}.log").open("w"),
                )
            )
        deadline = time.monotonic() + 20
        for name in ("details", "productpage", "outbound"):
            _wait_for(ports[name], deadline)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        app.shutdown()
        app.server_close()


def call(port: int, host: str, method: str, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(LOCAL, port, timeout=10)
    try:
        connection.request(method, path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def test_allowed_call_is_answered(mesh: dict[str, int]) -> None:
    assert call(mesh["outbound"], "details:9080", "GET", "/details/0") == (200, "details")
    assert (
        call(mesh["outbound"], "details.bookinfo.svc.cluster.local", "GET", "/details/1")[0] == 200
    )


def test_the_servers_rbac_refuses_what_the_policy_does_not_allow(mesh: dict[str, int]) -> None:
    status, body = call(mesh["outbound"], "details", "POST", "/details/0")
    assert status == 403
    assert "RBAC" in body
    assert call(mesh["outbound"], "details", "GET", "/details")[0] == 403
    # judged on the normalised path, as forwarded: `/details/../admin` is `/admin`
    assert call(mesh["outbound"], "details", "GET", "/details/../admin")[0] == 403


def test_an_undeclared_destination_has_no_route(mesh: dict[str, int]) -> None:
    assert call(mesh["outbound"], "ratings:9080", "GET", "/ratings/0")[0] == 404


def test_a_caller_without_client_certificate_is_refused(mesh: dict[str, int]) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(LOCAL, mesh["details"], context=context, timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/details/0")
        connection.getresponse().read()
    connection.close()


def test_shadow_mode_allows_and_counts_what_it_would_deny(tmp_path: Path) -> None:
    """A shadow-only policy: every authenticated caller gets through, and Envoy counts
    the requests the policy would deny (`…shadow_denied`)."""
    from tests.helpers import tree
    from tests.lower.envoy.test_rbac import SHADOW

    ports = {name: free_port() for name in ("app", "inbound", "admin")}
    app = ThreadingHTTPServer((LOCAL, ports["app"]), _Answer)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    instance = InstancePlacement(
        ServiceKey("shop", "cart"),
        "",
        0,
        inbound={8080: Address(LOCAL, ports["inbound"])},
        app={8080: Address(LOCAL, ports["app"])},
    )
    placement = {instance.node_id: instance}
    snapshot = snapshots_of(compile_placed(tree(SHADOW), placement=placement))[instance.node_id]
    authority = TestAuthority()
    bootstrap = static_bootstrap(snapshot, authority.issue(snapshot.identity))
    bootstrap["admin"] = {
        "address": {"socketAddress": {"address": LOCAL, "portValue": ports["admin"]}}
    }
    (tmp_path / "bootstrap.json").write_text(json.dumps(bootstrap))
    envoy = subprocess.Popen(
        [
            str(envoy_binary()),
            *("-c", str(tmp_path / "bootstrap.json"), "--disable-hot-restart"),
            *("--concurrency", "1", "-l", "error"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(ports["inbound"], time.monotonic() + 20)
        statuses = []
        for caller, method in (
            ("ns/elsewhere/sa/x", "GET"),
            ("ns/shop/sa/web", "GET"),
            ("ns/shop/sa/web", "POST"),
        ):
            certificate = authority.issue(f"spiffe://cluster.local/{caller}")
            (tmp_path / "cert.pem").write_text(certificate.chain_pem)
            (tmp_path / "key.pem").write_text(certificate.key_pem)
            context = ssl.create_default_context(cadata=certificate.root_pem)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
            connection = http.client.HTTPSConnection(
                LOCAL, ports["inbound"], context=context, timeout=5
            )
            connection.request(method, "/cart")
            statuses.append(connection.getresponse().status)
            connection.close()
        assert statuses == [200, 200, 200]
        with urllib.request.urlopen(f"http://{LOCAL}:{ports['admin']}/stats", timeout=5) as page:
            stats = dict(
                line.split(": ", 1) for line in page.read().decode().splitlines() if ": " in line
            )
        assert stats["http.inbound_8080.rbac.meshc_rbac_allow.shadow_denied"] == "2"
        assert stats["http.inbound_8080.rbac.meshc_rbac_allow.denied"] == "0"
    finally:
        envoy.terminate()
        try:
            envoy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            envoy.kill()
            envoy.wait()
        app.shutdown()
        app.server_close()
