"""`meshd up`: a complete local mesh from a policy folder, kept in step with it.

Start-up, in order: compile the folder once (a tree with errors has nothing to serve:
print the findings, exit 1), open the CA (this run's own, or `--ca-state`), start the
control plane and the status endpoint, then run the reconcile loop with the folder as
source and the local mesh as target: its first pass starts a demo backend and an Envoy per
workload instance and waits for every Envoy to ACK. Then it prints how to reach each
workload, publishes the run state, and reconciles on every policy edit until Ctrl-C or
SIGTERM, when everything it started is stopped and its files removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from compiler.api import Session, compile_tree, load_tree
from compiler.diagnostics import Severity
from compiler.model.placement import Address
from reconciler.ca.service import CAService
from reconciler.ca.store import read_passphrase
from reconciler.errors import MeshdError
from reconciler.loop import PassOutcome, Reconciler, finding_line, utc_now
from reconciler.source.folder import FolderSource
from reconciler.up.credentials import control_plane_id, temporary_ca
from reconciler.up.ports import LOCALHOST, check_port_free, free_port
from reconciler.up.proxies import Supervisor, find_envoy
from reconciler.up.runstate import (
    RunState,
    claim,
    make_workdir,
    process_start,
    publish,
    withdraw,
)
from reconciler.up.statusserver import start_status_server, status_document
from reconciler.up.target import Desired, LocalMeshTarget
from reconciler.xds.auth import server_tls_from_ca
from reconciler.xds.server import XdsServer

STARTUP_TIMEOUT = 30.0
"""How long the first pass waits for every Envoy to connect and ACK."""

Echo = Callable[[str], None]


class UpError(MeshdError):
    code = 1


@dataclass(frozen=True, slots=True)
class UpOptions:
    root: Path
    envoy: str | None = None
    ca_state: Path | None = None
    xds_port: int = 0
    envoy_log_level: str = "warning"


@dataclass(slots=True)
class Running:
    """Everything a running local mesh holds, closed in reverse order of start."""

    workdir: Path | None = None
    xds: XdsServer | None = None
    target: LocalMeshTarget | None = None
    status: web.AppRunner | None = None
    run_file: Path | None = None
    published: RunState | None = None
    ready: bool = False
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for closer in self.closers:
            await closer()
        if self.run_file is not None:
            withdraw(self.run_file)
        if self.target is not None:
            await self.target.close()
        if self.status is not None:
            await self.status.cleanup()
        if self.xds is not None:
            await self.xds.stop(grace=0.5)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


Tour = Callable[[Running, Echo], Awaitable[bool]]


async def run_up(options: UpOptions, *, echo: Echo, warn: Echo, tour: Tour | None = None) -> int:
    """Run until a signal (exit 130 for SIGINT, 0 for SIGTERM) or, with `tour`, until the
    tour ends (0 when it succeeded, 1 when not)."""
    running = Running()
    stop = asyncio.Event()
    signalled: list[int] = []
    loop = asyncio.get_running_loop()
    work = asyncio.create_task(_serve(options, running, stop, echo=echo, warn=warn, tour=tour))

    def on_signal(signum: int) -> None:
        signalled.append(signum)
        stop.set()
        if not running.ready or tour is not None:
            work.cancel()  # start-up and the tour do not watch `stop`

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        code = await work
    except asyncio.CancelledError:
        during = "start-up" if not running.ready else "the tour"
        warn(f"meshd up: interrupted during {during}; stopping what was started")
        code = 0
    finally:
        await running.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if signalled:
        code = 130 if signalled[0] == signal.SIGINT else 0
        echo("meshd up: stopped every Envoy and backend; run state removed")
    return code


async def _serve(
    options: UpOptions,
    running: Running,
    stop: asyncio.Event,
    *,
    echo: Echo,
    warn: Echo,
    tour: Tour | None,
) -> int:
    binary = find_envoy(options.envoy)
    root = options.root
    if options.xds_port:
        check_port_free(options.xds_port, what="--xds-port")
    running.run_file = claim()
    first = compile_tree(load_tree(root), now=utc_now(), session=(session := Session()))
    blocking = first.blocking(Severity.ERROR)
    if blocking:
        for diagnostic in blocking:
            warn(finding_line(diagnostic))
        raise UpError(
            f"{root}: the policy tree has {len(blocking)} error(s); nothing to serve. Fix "
            f"them (`meshc lint {root}`) and run `meshd up` again"
        )
    if not first.model.services:
        raise UpError(f"{root}: no Service documents; nothing to run")
    trust_domain = first.model.settings.trust_domain
    now = utc_now()
    running.workdir = make_workdir(running.run_file.parent)
    if options.ca_state is not None:
        ca = CAService(options.ca_state, passphrase=read_passphrase(None))
    else:
        ca = temporary_ca(running.workdir / "ca", trust_domain, now)
    running.xds = XdsServer(ca)
    tls = server_tls_from_ca(ca, now, control_plane_id(trust_domain))
    try:
        xds_port = await running.xds.start(LOCALHOST, options.xds_port, tls)
    except OSError as exc:
        raise UpError(f"control plane: {exc}") from None
    supervisor = Supervisor(
        binary,
        running.workdir,
        report=lambda line: warn(f"meshd up: {line}"),
        log_level=options.envoy_log_level,
    )
    status_port = free_port()

    def publish_state(desired: Desired) -> None:
        assert running.run_file is not None
        running.published = RunState(
            pid=os.getpid(),
            started=process_start(os.getpid()),
            status_url=f"http://{LOCALHOST}:{status_port}",
            xds=Address(LOCALHOST, xds_port),
            policy_root=str(root),
            mesh=desired.mesh,
            services=desired.services,
        )
        if running.ready:
            publish(running.run_file, running.published)

    running.target = LocalMeshTarget(
        xds=running.xds,
        xds_port=xds_port,
        ca=ca,
        supervisor=supervisor,
        workdir=running.workdir,
        on_change=publish_state,
        warn=lambda line: warn(f"meshd up: {line}"),
    )
    reconciler = Reconciler(
        FolderSource(root), running.target, confirm_timeout=STARTUP_TIMEOUT, session=session
    )
    target, xds = running.target, running.xds

    def document() -> dict[str, Any]:
        placement = target.current.mesh.placement if target.current else {}
        return status_document(reconciler, xds, supervisor, placement)

    running.status = await start_status_server(
        LOCALHOST, status_port, status=document, metrics=xds.metrics_text
    )
    outcome = await reconciler.reconcile()
    if not outcome.applied:
        for line in outcome.findings:
            warn(line)
        raise UpError(f"{root}: the first revision could not be applied ({outcome.reason})")
    if outcome.pending or outcome.rejected:
        _report_pass(outcome, echo=echo, warn=warn)
        raise UpError(
            "not every Envoy took its configuration; see the messages above and the Envoy "
            f"logs in {running.workdir}"
        )
    running.ready = True
    renewal = asyncio.create_task(running.target.keep_credentials_fresh())
    running.closers.append(lambda: _cancelled(renewal))
    assert running.published is not None
    publish(running.run_file, running.published)
    for line in workload_table(running.published, xds_port=xds_port, hint=tour is None):
        echo(line)
    if tour is not None:
        return 0 if await tour(running, echo) else 1
    echo(f"Watching {root} for changes; Ctrl-C stops everything.")
    reconciler.confirm_timeout = 10.0
    await reconciler.run(
        stop=stop, on_pass=lambda o: _report_pass(o, echo=echo, warn=warn), first=False
    )
    return 0


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _report_pass(outcome: PassOutcome, *, echo: Echo, warn: Echo) -> None:
    took = f"{outcome.seconds * 1000:.0f} ms"
    if not outcome.applied:
        warn(
            f"meshd up: refused revision {outcome.revision or '?'} ({outcome.reason}); the "
            "proxies keep the last good configuration:"
        )
        for line in outcome.findings:
            warn(f"  {line}")
        return
    for node, message in sorted(outcome.rejected.items()):
        warn(
            f"meshd up: envoy {node} rejected revision {outcome.revision} (NACK): {message}; "
            "it keeps its previous configuration"
        )
    if outcome.pending:
        warn(f"meshd up: no answer yet from {', '.join(outcome.pending)} ({took})")
    if outcome.reason == "Applied":
        echo(f"meshd up: applied revision {outcome.revision} in {took}")
    elif outcome.reason == "Unchanged":
        echo(f"meshd up: revision {outcome.revision} changes no proxy")


def workload_table(state: RunState, *, xds_port: int, hint: bool = True) -> list[str]:
    header = ("NODE", "SERVICE", "VERSION", "CALL THROUGH", "APP", "ADMIN")
    rows: list[tuple[str, ...]] = [header]
    for node_id, instance in sorted(state.mesh.placement.items()):
        rows.append(
            (
                node_id,
                str(instance.service),
                instance.version or "-",
                str(instance.outbound) if instance.outbound else "-",
                ", ".join(str(a) for _, a in sorted(instance.app.items())) or "-",
                str(state.mesh.admin[node_id]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        f"meshd up: {len(state.mesh.placement)} workloads from {state.policy_root}, control "
        f"plane on {LOCALHOST}:{xds_port}, status on {state.status_url}/status"
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    example = _example_call(state) if hint else None
    if example:
        lines.append(f"Try: {example}   (and `meshd status`)")
    return lines


def _example_call(state: RunState) -> str | None:
    for key, info in sorted(state.services.items()):
        for callee in info.calls:
            return f"meshd call {key.split('/', 1)[1]} {callee.split('/', 1)[1]} PATH"
    return None


def main_up(options: UpOptions, tour: Tour | None = None) -> int:
    def echo(line: str) -> None:
        print(line, flush=True)

    def warn(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run_up(options, echo=echo, warn=warn, tour=tour))
    return 130
