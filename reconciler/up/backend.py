"""The demo backend: a tiny HTTP application standing in for each workload instance.

`meshd up` runs one per instance so that traffic through the Envoys has something real to
reach: every answer names the service, version and instance that served it (JSON body and
the `x-meshd-served-by` header), which is how `meshd call` shows a traffic split. A backend
can be told to misbehave — answer 503 to every Nth request or to all, or answer late — to
show retries, timeouts and circuit breaking on real traffic. The control endpoints live
under `/_meshd/` on the application port itself, which callers reach only through the
sidecar (and its RBAC), so tests and demos drive them directly on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from reconciler.up.headers import SERVED_BY

CONTROL_PREFIX = "/_meshd/"


@dataclass(slots=True)
class Behaviour:
    """How a backend answers; changed at run time through `/_meshd/behaviour`."""

    fail_every: int = 0
    """Answer 503 to every Nth request (1: always; 0: never)."""
    delay_ms: int = 0
    """Wait this long before answering."""


@dataclass(slots=True)
class DemoBackend:
    """One instance's application: identity, behaviour and a request counter."""

    service: str
    version: str
    index: int
    behaviour: Behaviour = field(default_factory=Behaviour)
    served: int = 0

    @property
    def served_by(self) -> str:
        return f"{self.service}/{self.version or '-'}/{self.index}"

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get(CONTROL_PREFIX + "behaviour", self._show_behaviour)
        app.router.add_post(CONTROL_PREFIX + "behaviour", self._set_behaviour)
        app.router.add_route("*", "/{tail:.*}", self._answer)
        return app

    async def _answer(self, request: web.Request) -> web.Response:
        self.served += 1
        if self.behaviour.delay_ms:
            await asyncio.sleep(self.behaviour.delay_ms / 1000)
        failing = self.behaviour.fail_every and self.served % self.behaviour.fail_every == 0
        body = {
            "service": self.service,
            "version": self.version,
            "instance": self.index,
            "method": request.method,
            "path": request.path_qs,
            "request": self.served,
        }
        return web.json_response(
            body, status=503 if failing else 200, headers={SERVED_BY: self.served_by}
        )

    async def _show_behaviour(self, request: web.Request) -> web.Response:
        return web.json_response(self._behaviour_json())

    async def _set_behaviour(self, request: web.Request) -> web.Response:
        """Body: `{"fail_every": N, "delay_ms": M}`; an absent key keeps its value."""
        try:
            data = await request.json()
            fail_every = int(data.get("fail_every", self.behaviour.fail_every))
            delay_ms = int(data.get("delay_ms", self.behaviour.delay_ms))
        except (ValueError, TypeError, AttributeError):
            return web.json_response(
                {"error": 'body must be JSON like {"fail_every": 2, "delay_ms": 0}'}, status=400
            )
        if fail_every < 0 or delay_ms < 0:
            return web.json_response({"error": "values must be >= 0"}, status=400)
        self.behaviour = Behaviour(fail_every=fail_every, delay_ms=delay_ms)
        self.served = 0
        return web.json_response(self._behaviour_json())

    def _behaviour_json(self) -> dict[str, int | str]:
        return {
            "served_by": self.served_by,
            "fail_every": self.behaviour.fail_every,
            "delay_ms": self.behaviour.delay_ms,
        }


async def start_backend(backend: DemoBackend, host: str, ports: list[int]) -> web.AppRunner:
    """Serve `backend` on every port in `ports`; the caller cleans the runner up."""
    runner = web.AppRunner(backend.application(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        for port in ports:
            await web.TCPSite(runner, host, port, reuse_address=False).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
