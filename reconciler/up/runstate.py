"""Where a running `meshd up` says how to reach it, so `meshd call` and `meshd status` need
no flags: `$XDG_RUNTIME_DIR/meshd/up.json` (else `/tmp/meshd-$UID/up.json`).

The file names the process (pid and its kernel start time, so a recycled pid is not
mistaken for it), the local status endpoint, the control plane's address and every
node's placement. `meshd up` writes it once the mesh is up and removes it on exit; a file
whose process is gone (a `kill -9`, a reboot) is stale: readers ignore it and the next
`meshd up` replaces it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.model.mesh import ServiceKey
from compiler.model.placement import Address, InstancePlacement
from reconciler.errors import MeshdError
from reconciler.up.ports import LocalMesh

RUN_FILE = "up.json"
SCHEMA = 1


class NotRunning(MeshdError):
    """No `meshd up` is running: exit 2, as the issue's `meshd call` contract says."""

    code = 2


class AlreadyRunning(MeshdError):
    code = 1


def run_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "meshd"
    return Path(tempfile.gettempdir()) / f"meshd-{os.getuid()}"


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    current = process_start(pid)
    return started is None or current is None or current == started


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """How callers reach a service, and which AccessPolicies decide who may."""

    host: str
    ports: Mapping[int, str]
    """Service port → protocol."""
    policies: tuple[str, ...]
    """`namespace/name` of each AccessPolicy of the service."""
    calls: tuple[str, ...]
    """`namespace/name` of each service it declares it calls."""


@dataclass(frozen=True, slots=True)
class RunState:
    """What a running `meshd up` publishes."""

    pid: int
    started: str | None
    status_url: str
    xds: Address
    policy_root: str
    mesh: LocalMesh
    services: Mapping[str, ServiceInfo]
    """`namespace/name` → how to reach it (from the last good compilation)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "pid": self.pid,
            "started": self.started,
            "status_url": self.status_url,
            "xds": str(self.xds),
            "policy_root": self.policy_root,
            "nodes": {
                node_id: _instance_json(instance, self.mesh.admin[node_id])
                for node_id, instance in sorted(self.mesh.placement.items())
            },
            "services": {
                key: {
                    "host": info.host,
                    "ports": {str(p): protocol for p, protocol in sorted(info.ports.items())},
                    "policies": list(info.policies),
                    "calls": list(info.calls),
                }
                for key, info in sorted(self.services.items())
            },
        }


def _instance_json(instance: InstancePlacement, admin: Address) -> dict[str, Any]:
    return {
        "namespace": instance.service.namespace,
        "service": instance.service.name,
        "version": instance.version,
        "index": instance.index,
        "inbound": {str(p): str(a) for p, a in sorted(instance.inbound.items())},
        "app": {str(p): str(a) for p, a in sorted(instance.app.items())},
        "outbound": str(instance.outbound) if instance.outbound else None,
        "tcp_outbound": [
            [str(key[0]), key[1], str(address)]
            for key, address in sorted(instance.tcp_outbound.items())
        ],
        "admin": str(admin),
    }


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return Address(host, int(port))


def _instance(node: dict[str, Any]) -> tuple[InstancePlacement, Address]:
    instance = InstancePlacement(
        service=ServiceKey(node["namespace"], node["service"]),
        version=node["version"],
        index=int(node["index"]),
        inbound={int(p): _address(a) for p, a in node["inbound"].items()},
        app={int(p): _address(a) for p, a in node["app"].items()},
        outbound=_address(node["outbound"]) if node["outbound"] else None,
        tcp_outbound={
            (ServiceKey(*key.split("/", 1)), int(port)): _address(address)
            for key, port, address in node["tcp_outbound"]
        },
    )
    return instance, _address(node["admin"])


def parse(data: dict[str, Any]) -> RunState:
    placement: dict[str, InstancePlacement] = {}
    admin: dict[str, Address] = {}
    for node_id, node in data["nodes"].items():
        placement[node_id], admin[node_id] = _instance(node)
    return RunState(
        pid=int(data["pid"]),
        started=data.get("started"),
        status_url=str(data["status_url"]),
        xds=_address(data["xds"]),
        policy_root=str(data["policy_root"]),
        mesh=LocalMesh(placement=placement, admin=admin),
        services={
            key: ServiceInfo(
                host=str(info["host"]),
                ports={int(p): str(protocol) for p, protocol in info["ports"].items()},
                policies=tuple(info["policies"]),
                calls=tuple(info["calls"]),
            )
            for key, info in data.get("services", {}).items()
        },
    )


def read_running(directory: Path | None = None) -> RunState:
    """The running `meshd up`; `NotRunning` (exit 2) when there is none or it is stale."""
    path = (directory or run_dir()) / RUN_FILE
    remedy = "start one with `meshd up [PATH]` in another terminal"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = parse(data)
    except FileNotFoundError:
        raise NotRunning(f"no `meshd up` is running (no {path}); {remedy}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise NotRunning(f"{path}: unreadable run state, ignored; {remedy}") from None
    if not alive(state.pid, state.started):
        raise NotRunning(
            f"no `meshd up` is running ({path} is stale: pid {state.pid} is gone); {remedy}"
        )
    return state


def claim(directory: Path | None = None) -> Path:
    """Make sure no other `meshd up` runs; returns the run-state file to write."""
    base = directory or run_dir()
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = base / RUN_FILE
    with contextlib.suppress(NotRunning):
        running = read_running(base)
        if running.pid != os.getpid():
            raise AlreadyRunning(
                f"a `meshd up` is already running (pid {running.pid}, {running.policy_root}); "
                "stop it (Ctrl-C in its terminal) before starting another"
            )
    return path


WORKDIR_PREFIX = "up-"


def make_workdir(base: Path) -> Path:
    """This run's private directory (Envoy bootstraps, logs, credentials, the temporary CA),
    named after the pid so that a later run can sweep the one a `kill -9` left behind."""
    sweep_workdirs(base)
    path = base / f"{WORKDIR_PREFIX}{os.getpid()}-{process_start(os.getpid()) or 0}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path


def sweep_workdirs(base: Path) -> list[Path]:
    """Remove the working directories of runs whose process is gone (they may hold keys)."""
    swept = []
    for candidate in base.glob(f"{WORKDIR_PREFIX}*"):
        pid, _, started = candidate.name.removeprefix(WORKDIR_PREFIX).partition("-")
        if not pid.isdigit() or alive(int(pid), started if started != "0" else None):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        swept.append(candidate)
    return swept


def publish(path: Path, state: RunState) -> None:
    """Write the run state atomically (readers never see half a file)."""
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=".up-", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(state.to_json(), out, indent=1, sort_keys=True)
    os.replace(scratch, path)


def withdraw(path: Path) -> None:
    """Remove the run state, but only our own (a later `meshd up` may have replaced it)."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        if int(json.loads(path.read_text())["pid"]) == os.getpid():
            path.unlink()
