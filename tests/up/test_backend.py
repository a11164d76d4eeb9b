"""The demo backend: who answered, and misbehaviour on demand (every Nth 503, delays)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from reconciler.up.backend import DemoBackend, start_backend
from reconciler.up.headers import SERVED_BY
from reconciler.up.ports import LOCALHOST, free_port


async def _with_backend(backend: DemoBackend, body: Any) -> Any:
    port = free_port()
    runner = await start_backend(backend, LOCALHOST, [port])
    try:
        async with aiohttp.ClientSession(f"http://{LOCALHOST}:{port}") as session:
            return await body(session)
    finally:
        await runner.cleanup()


def test_answers_with_its_service_version_and_instance() -> None:
    async def body(session: aiohttp.ClientSession) -> tuple[int, str, dict[str, Any]]:
        async with session.get("/reviews/0?x=1") as response:
            return response.status, response.headers[SERVED_BY], await response.json()

    status, served_by, data = asyncio.run(_with_backend(DemoBackend("reviews", "v3", 2), body))
    assert (status, served_by) == (200, "reviews/v3/2")
    assert data["service"] == "reviews" and data["version"] == "v3" and data["instance"] == 2
    assert data["path"] == "/reviews/0?x=1" and data["method"] == "GET"


def test_fails_every_second_request_when_told() -> None:
    async def body(session: aiohttp.ClientSession) -> list[int]:
        async with session.post("/_meshd/behaviour", json={"fail_every": 2}) as response:
            assert response.status == 200
        codes = []
        for _ in range(6):
            async with session.get("/") as response:
                codes.append(response.status)
        return codes

    assert asyncio.run(_with_backend(DemoBackend("ratings", "v1", 0), body)) == [200, 503] * 3


def test_always_fails_and_recovers() -> None:
    async def body(session: aiohttp.ClientSession) -> list[int]:
        codes = []
        for setting in (1, 0):
            async with session.post("/_meshd/behaviour", json={"fail_every": setting}):
                pass
            for _ in range(2):
                async with session.get("/") as response:
                    codes.append(response.status)
        return codes

    assert asyncio.run(_with_backend(DemoBackend("ratings", "v1", 0), body)) == [503, 503, 200, 200]


def test_delays_answers_when_told() -> None:
    async def body(session: aiohttp.ClientSession) -> float:
        async with session.post("/_meshd/behaviour", json={"delay_ms": 300}) as response:
            assert (await response.json())["delay_ms"] == 300
        started = time.monotonic()
        async with session.get("/") as response:
            assert response.status == 200
        return time.monotonic() - started

    assert asyncio.run(_with_backend(DemoBackend("details", "", 0), body)) >= 0.3


def test_bad_control_body_is_refused_and_changes_nothing() -> None:
    async def body(session: aiohttp.ClientSession) -> tuple[int, str, dict[str, Any]]:
        async with session.post("/_meshd/behaviour", data=b"not json") as response:
            status, text = response.status, await response.text()
        async with session.get("/_meshd/behaviour") as response:
            return status, text, await response.json()

    status, text, shown = asyncio.run(_with_backend(DemoBackend("details", "v1", 0), body))
    assert status == 400 and "fail_every" in json.loads(text)["error"]
    assert shown == {"served_by": "details/v1/0", "fail_every": 0, "delay_ms": 0}
