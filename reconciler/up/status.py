"""`meshd status` for a running `meshd up`: one line per proxy, like `istioctl proxy-status`.

The up process answers `GET /status` (JSON) and `GET /metrics` (Prometheus text) on a
127.0.0.1 port named in its run state; `meshd status` fetches and prints it. The JSON joins
what the control plane knows (per xDS type: pushed and ACKed versions, NACKs with Envoy's
message) with what the supervisor knows (pid, restarts, last exit) and the loop's status.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from aiohttp import web

from reconciler.loop import Reconciler
from reconciler.up.proxies import Supervisor
from reconciler.up.runstate import NotRunning, RunState
from reconciler.xds.server import XdsServer
from reconciler.xds.status import COLUMNS, ProxyStatus

StatusSource = Callable[[], dict[str, Any]]


def status_document(
    reconciler: Reconciler, xds: XdsServer, supervisor: Supervisor, placement: Mapping[str, Any]
) -> dict[str, Any]:
    connected = {proxy.node_id: proxy for proxy in xds.status()}
    proxies = []
    for node_id in sorted(set(placement) | set(supervisor.proxies) | set(connected)):
        process = supervisor.proxies.get(node_id)
        proxy = connected.get(node_id)
        instance = placement.get(node_id)
        proxies.append(
            {
                "node": node_id,
                "service": str(instance.service) if instance else None,
                "version": instance.version if instance else None,
                "pid": process.pid if process else None,
                "restarts": process.restarts if process else 0,
                "last_exit": process.last_exit if process else None,
                "xds": _proxy_json(proxy) if proxy else None,
            }
        )
    return {
        "loop": asdict(reconciler.state),
        "generation": xds.generation,
        "proxies": proxies,
        "refusals": [asdict(refusal) for refusal in xds.refusals[-10:]],
    }


def _proxy_json(proxy: ProxyStatus) -> dict[str, Any]:
    return {
        "identity": proxy.identity,
        "connected_since": _time(proxy.connected_since),
        "generation": proxy.generation,
        "types": {
            name: {
                "state": state.state,
                "pushed": state.pushed_version,
                "acked": state.acked_version,
                "pushed_at": _time(state.pushed_at),
                "nack": state.nack_message,
            }
            for name, state in sorted(proxy.types.items())
        },
    }


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


async def start_status_server(
    host: str, port: int, *, status: StatusSource, metrics: Callable[[], str]
) -> web.AppRunner:
    async def show_status(request: web.Request) -> web.Response:
        return web.json_response(status(), dumps=lambda d: json.dumps(d, indent=1))

    async def show_metrics(request: web.Request) -> web.Response:
        return web.Response(text=metrics(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/status", show_status)
    app.router.add_get("/metrics", show_metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def fetch_status(running: RunState, *, timeout: float = 5.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(running.status_url + "/status", timeout=timeout) as answer:
            data: dict[str, Any] = json.load(answer)
            return data
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise NotRunning(
            f"meshd up (pid {running.pid}) does not answer on {running.status_url}: {exc}"
        ) from None


def status_lines(running: RunState, document: Mapping[str, Any]) -> list[str]:
    """A header with the loop's state, then one line per proxy and its NACKs under it."""
    loop = document["loop"]
    ready = next((c for c in loop["conditions"] if c["type"] == "Ready"), None)
    lines = [
        f"meshd up (pid {running.pid}) serving {running.policy_root}: "
        f"applied {loop['last_applied_revision'] or 'nothing'}, "
        f"last attempted {loop['last_attempted_revision'] or 'nothing'}"
        + (f", Ready={ready['status']} ({ready['reason']})" if ready else ""),
    ]
    lines += [f"  refused: {finding}" for finding in loop["findings"]]
    header = ("NODE", "SERVICE", "VERSION", "PID", "RESTARTS", *COLUMNS, "PUSHED", "ACKED")
    rows: list[tuple[str, ...]] = [header]
    notes: dict[int, list[str]] = {}
    for proxy in document["proxies"]:
        xds = proxy["xds"]
        types = xds["types"] if xds else {}
        states = [types[c]["state"] if c in types else "-" for c in COLUMNS]
        if xds is None:
            states = ["DISCONNECTED"] + ["-"] * (len(COLUMNS) - 1)
        lds = types.get("LDS", {})
        rows.append(
            (
                proxy["node"],
                proxy["service"] or "-",
                proxy["version"] or "-",
                str(proxy["pid"] or "-"),
                str(proxy["restarts"]),
                *states,
                lds.get("pushed") or "-",
                lds.get("acked") or "-",
            )
        )
        note = [f"    {t} rejected: {s['nack']}" for t, s in sorted(types.items()) if s["nack"]]
        if proxy["last_exit"]:
            note.append(f"    envoy restarted {proxy['restarts']}x; last {proxy['last_exit']}")
        notes[len(rows) - 1] = note
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines += notes.get(index, [])
    return lines
