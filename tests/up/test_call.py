"""`meshd call` against a stand-in sidecar: how each answer is classified and the exit
codes (0 all 2xx, 1 any refused or failed, 2 no running mesh, stale or unreadable state)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.model.mesh import ServiceKey
from compiler.model.placement import Address, InstancePlacement
from reconciler.cli import main
from reconciler.up.headers import DENIED_BY, SERVED_BY
from reconciler.up.ports import LocalMesh
from reconciler.up.runstate import RUN_FILE, RunState, ServiceInfo, process_start, publish


class FakeSidecar(BaseHTTPRequestHandler):
    """Answers like productpage's outbound listener would: reviews is routed (GET on
    /reviews/* allowed, anything else 403 from reviews' RBAC), every other host has no
    route (404 from Envoy itself, no backend header)."""

    calls = 0

    def _answer(self) -> None:
        FakeSidecar.calls += 1
        host = self.headers["host"]
        if not host.startswith("reviews.bookinfo.svc.cluster.local"):
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if self.path.startswith("/missing"):  # TO's own sidecar has no route
            self.send_response(404)
            self.send_header("x-envoy-upstream-service-time", "1")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if self.command == "HEAD":  # RBAC's 403 to a HEAD: no body, the detail header only
            self.send_response(403)
            self.send_header(DENIED_BY, "rbac_access_denied_matched_policy[none]")
            self.send_header("x-envoy-upstream-service-time", "1")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if self.command != "GET" or not self.path.startswith("/reviews/"):
            body = b"RBAC: access denied"
            self.send_response(403)
            if self.path == "/admin":  # a deny rule matched, and the sidecar says which
                rule = "rbac_access_denied_matched_policy[bookinfo/reviews-deny/rule-2]"
                self.send_header(DENIED_BY, rule)
            self.send_header("x-envoy-upstream-service-time", "1")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        version = "v3" if FakeSidecar.calls % 4 == 0 else "v1"
        body = json.dumps({"service": "reviews", "version": version}).encode()
        self.send_response(200)
        self.send_header(SERVED_BY, f"reviews/{version}/0")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def _state(outbound: Address, *, pid: int, started: str | None) -> RunState:
    def instance(name: str, calls: bool) -> InstancePlacement:
        return InstancePlacement(
            service=ServiceKey("bookinfo", name),
            version="v1",
            index=0,
            inbound={9080: Address("127.0.0.1", 1)},
            app={9080: Address("127.0.0.1", 2)},
            outbound=outbound if calls else None,
            tcp_outbound={(ServiceKey("bookinfo", "details"), 6379): Address("127.0.0.1", 7)}
            if calls
            else {},
        )

    placement = {
        "productpage.bookinfo~v1~0": instance("productpage", True),
        "ratings.bookinfo~v1~0": instance("ratings", False),
    }

    def info(name: str, calls: tuple[str, ...]) -> ServiceInfo:
        return ServiceInfo(
            host=f"{name}.bookinfo.svc.cluster.local",
            ports={9080: "http", 6379: "tcp"} if name == "details" else {9080: "http"},
            policies=(f"bookinfo/{name}",),
            calls=calls,
        )

    return RunState(
        pid=pid,
        started=started,
        status_url="http://127.0.0.1:1",
        xds=Address("127.0.0.1", 3),
        policy_root="policies",
        mesh=LocalMesh(placement=placement, admin={n: Address("127.0.0.1", 4) for n in placement}),
        services={
            "bookinfo/productpage": info("productpage", ("bookinfo/reviews", "bookinfo/details")),
            "bookinfo/reviews": info("reviews", ()),
            "bookinfo/details": info("details", ()),
            "bookinfo/ratings": info("ratings", ()),
        },
    )


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path / "meshd"


@pytest.fixture
def mesh(runtime: Path) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSidecar)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    runtime.mkdir()
    outbound = Address("127.0.0.1", server.server_address[1])
    publish(
        runtime / RUN_FILE, _state(outbound, pid=os.getpid(), started=process_start(os.getpid()))
    )
    try:
        yield runtime
    finally:
        server.shutdown()
        server.server_close()


def _call(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["call", *args])
    return result.exit_code, result.output


def test_an_allowed_call_exits_0_and_names_the_version(mesh: Path) -> None:
    code, output = _call("productpage", "reviews", "/reviews/0")
    assert code == 0, output
    assert "200 OK: answered by reviews v1 (reviews/v1/0)" in output
    assert "Host: reviews.bookinfo.svc.cluster.local:9080" in output


def test_an_undeclared_call_is_denied_with_no_route(mesh: Path) -> None:
    code, output = _call("productpage", "ratings", "/")
    assert code == 1
    assert "denied (no route: productpage does not declare a call to ratings)" in output


def test_a_caller_without_calls_is_denied_with_no_route(mesh: Path) -> None:
    code, output = _call("ratings", "productpage", "/")
    assert code == 1
    assert "denied (no route: ratings does not declare a call to productpage;" in output


def test_a_404_from_the_destinations_side_is_not_a_no_route_denial(mesh: Path) -> None:
    code, output = _call("productpage", "reviews", "/missing")
    assert code == 1
    assert "failed (404: no body)" in output and "no route" not in output


def test_an_rbac_refusal_names_the_access_policy(mesh: Path) -> None:
    code, output = _call("productpage", "reviews", "--path", "/reviews/0", "--method", "POST")
    assert code == 1
    assert "denied (403: AccessPolicy bookinfo/reviews)" in output


def test_a_bodiless_rbac_refusal_is_a_denial_not_a_failure(mesh: Path) -> None:
    code, output = _call("productpage", "reviews", "/reviews/0", "--method", "HEAD")
    assert code == 1
    assert "denied (403: AccessPolicy bookinfo/reviews)" in output


def test_a_matched_deny_rule_is_named_when_the_sidecar_passes_it_on(mesh: Path) -> None:
    code, output = _call("productpage", "reviews", "/admin")
    assert code == 1
    assert "denied (403: AccessPolicy bookinfo/reviews-deny (rule 2))" in output


def test_several_requests_print_the_split_per_version(mesh: Path) -> None:
    FakeSidecar.calls = 0
    code, output = _call("productpage", "reviews", "/reviews/1", "-n", "8")
    assert code == 0, output
    assert "8 requests: 8 answered 2xx" in output
    assert "reviews v1" in output and "75.0%" in output
    assert "reviews v3" in output and "25.0%" in output


def test_json_output_lists_every_result(mesh: Path) -> None:
    code, output = _call("productpage", "reviews", "/admin", "-n", "2", "--json")
    assert code == 1
    results = json.loads(output)["results"]
    assert [r["status"] for r in results] == [403, 403]
    assert {r["kind"] for r in results} == {"denied"}


def test_unknown_service_and_bad_header_are_usage_errors(mesh: Path) -> None:
    code, output = _call("productpage", "nosuch", "/")
    assert code == 2 and "TO 'nosuch': no such service in the running mesh" in output
    code, output = _call("productpage", "reviews", "/", "-H", "no-colon")
    assert code == 2 and "write a header as 'name: value'" in output


def test_a_tcp_port_is_refused_with_its_listener(mesh: Path) -> None:
    code, output = _call("productpage", "details", "/", "--port", "6379")
    assert code == 2
    assert "a TCP port of bookinfo/details" in output
    assert "connect to 127.0.0.1:7 with a TCP client" in output
    code, output = _call("productpage", "details", "/", "--port", "1")
    assert code == 2 and "has no such port (it has 6379, 9080)" in output


def test_no_running_mesh_exits_2(runtime: Path) -> None:
    code, output = _call("productpage", "reviews", "/")
    assert code == 2
    assert "no `meshd up` is running" in output and "meshd up [PATH]" in output


def test_a_stale_run_state_is_ignored_and_exits_2(runtime: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runtime.mkdir()
    publish(runtime / RUN_FILE, _state(Address("127.0.0.1", 9), pid=gone.pid, started=None))
    code, output = _call("productpage", "reviews", "/")
    assert code == 2
    assert f"is stale: pid {gone.pid} is gone" in output
    code, output = _call_status()
    assert code == 2 and "stale" in output


def test_a_recycled_pid_is_stale_too(runtime: Path) -> None:
    runtime.mkdir()
    state = _state(Address("127.0.0.1", 9), pid=os.getpid(), started="1")  # another start time
    publish(runtime / RUN_FILE, state)
    code, output = _call("productpage", "reviews", "/")
    assert code == 2 and "stale" in output


def test_an_unreadable_run_state_exits_2(runtime: Path) -> None:
    runtime.mkdir()
    (runtime / RUN_FILE).write_text("{not json")
    code, output = _call("productpage", "reviews", "/")
    assert code == 2 and "unreadable run state" in output


def _call_status() -> tuple[int, str]:
    result = CliRunner().invoke(main, ["status"])
    return result.exit_code, result.output
