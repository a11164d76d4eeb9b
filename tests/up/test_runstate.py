"""The run state of `meshd up`: where it lives, a faithful round trip, and how a live, a
stale and a foreign one are told apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.api import compile_tree, load_tree
from compiler.model.placement import Address
from reconciler.up.ports import allocate
from reconciler.up.runstate import (
    RUN_FILE,
    AlreadyRunning,
    RunState,
    claim,
    make_workdir,
    parse,
    process_start,
    publish,
    read_running,
    run_dir,
    sweep_workdirs,
    withdraw,
)
from reconciler.up.target import service_infos
from tests.helpers import NOW, REPO


def _state(pid: int) -> RunState:
    model = compile_tree(load_tree(REPO / "policies"), now=NOW).model
    return RunState(
        pid=pid,
        started=process_start(pid),
        status_url="http://127.0.0.1:1",
        xds=Address("127.0.0.1", 2),
        policy_root="policies",
        mesh=allocate(model),
        services=service_infos(model),
    )


def test_run_dir_follows_xdg_runtime_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert run_dir() == tmp_path / "meshd"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert run_dir().name.startswith("meshd-")


def test_round_trip_keeps_placement_and_services(tmp_path: Path) -> None:
    state = _state(os.getpid())
    publish(tmp_path / RUN_FILE, state)
    back = read_running(tmp_path)
    assert back == parse(state.to_json())
    assert back.mesh == state.mesh and back.services == state.services
    reviews = back.services["bookinfo/reviews"]
    assert reviews.policies == ("bookinfo/reviews",) and reviews.calls == ("bookinfo/ratings",)
    withdraw(tmp_path / RUN_FILE)
    assert not (tmp_path / RUN_FILE).exists()


def test_a_live_meshd_up_is_not_replaced(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        publish(tmp_path / RUN_FILE, _state(other.pid))
        with pytest.raises(AlreadyRunning, match=f"already running \\(pid {other.pid}"):
            claim(tmp_path)
        withdraw(tmp_path / RUN_FILE)  # not ours: left alone
        assert (tmp_path / RUN_FILE).exists()
    finally:
        other.kill()
        other.wait()
    assert claim(tmp_path) == tmp_path / RUN_FILE  # now stale: ignored


def test_working_directories_of_dead_runs_are_swept(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f"up-{gone.pid}-1"
    (dead / "ca").mkdir(parents=True)
    (dead / "ca" / "key.pem").write_text("a key a crashed run left behind")
    live = tmp_path / f"up-{os.getpid()}-{process_start(os.getpid())}"
    live.mkdir()
    assert sweep_workdirs(tmp_path) == [dead]
    assert not dead.exists() and live.exists()
    mine = make_workdir(tmp_path)
    assert mine == live and mine.is_dir() and not any(mine.iterdir())
    assert mine.stat().st_mode & 0o777 == 0o700
