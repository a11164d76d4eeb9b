"""The status endpoint of a running `meshd up`: `GET /status` (JSON) and `GET /metrics`
(Prometheus text) on 127.0.0.1. The JSON joins what the control plane knows (per xDS type:
pushed and ACKed versions, NACKs with Envoy's message) with what the supervisor knows (pid,
restarts, last exit) and the loop's status; `reconciler.up.status` prints it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from aiohttp import web

from reconciler.loop import Reconciler
from reconciler.up.proxies import Supervisor
from reconciler.xds.server import XdsServer
from reconciler.xds.status import ProxyStatus

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
