"""Resilience settings and shadow mode on real Envoys (`meshd up` over fixtures/traffic).

One mesh for the module: `client` calls four servers whose demo backends are told to
misbehave, and each test checks what the caller sees through its own sidecar — retries hide
a backend failing every second request, a timeout answers 504, the circuit breaker turns
away over-limit concurrency (503, overflow), and a shadow-mode policy lets through what it
would deny while Envoy counts it.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.mesh import LocalMesh, local_mesh, statuses

FIXTURE = Path(__file__).parent / "fixtures" / "traffic"
CLIENT = "demo/client"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with local_mesh(FIXTURE, tmp_path_factory.mktemp("traffic")) as running:
        yield running


def _client_counter(mesh: LocalMesh, server: str, counter: str) -> int:
    """The sum of `counter` over the client's clusters for `server` (one per version)."""
    node = mesh.nodes_of(CLIENT)[0]
    found = mesh.stats(node, rf"^cluster\..*{server}.*\.{counter}$")
    assert found, f"no {counter} counter for {server}'s clusters"
    return sum(found.values())


def _overflows(mesh: LocalMesh, server: str) -> int:
    """Requests the client's circuit breaker for `server` turned away (Envoy's UO flag):
    over `maxRequests` (active) or over `maxPendingRequests` (pending)."""
    return _client_counter(mesh, server, "upstream_rq_(active|pending)_overflow")


def test_retries_hide_a_backend_that_fails_every_second_request(mesh: LocalMesh) -> None:
    (node,) = mesh.nodes_of("demo/flaky")
    mesh.behave(node, fail_every=2)
    before = _client_counter(mesh, "flaky", "upstream_rq_retry")
    results = mesh.call(CLIENT, "flaky", "/work", count=40)
    assert statuses(results) == [200] * 40
    retried = _client_counter(mesh, "flaky", "upstream_rq_retry") - before
    assert retried >= 19, f"only {retried} retries: the backend did not fail as told"


def test_a_timeout_answers_504(mesh: LocalMesh) -> None:
    (node,) = mesh.nodes_of("demo/slow")
    mesh.behave(node, delay_ms=1500)
    try:
        (result,) = mesh.call(CLIENT, "slow", "/late")
        assert result.status == 504, result
        mesh.behave(node, delay_ms=0)
        (fast,) = mesh.call(CLIENT, "slow", "/late")
        assert fast.status == 200, fast
    finally:
        mesh.behave(node, delay_ms=0)


def _raw_get(mesh: LocalMesh, host: str) -> tuple[int, dict[str, str]]:
    """One GET through the client's sidecar on a connection of its own."""
    outbound = mesh.node(mesh.nodes_of(CLIENT)[0]).outbound
    assert outbound is not None
    connection = http.client.HTTPConnection(outbound.host, outbound.port, timeout=30)
    try:
        connection.request("GET", "/busy", headers={"host": host})
        response = connection.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def test_the_circuit_breaker_rejects_over_limit_concurrency(mesh: LocalMesh) -> None:
    (node,) = mesh.nodes_of("demo/narrow")
    mesh.behave(node, delay_ms=800)
    host = mesh.running().services["demo/narrow"].host + ":8080"
    before = _overflows(mesh, "narrow")
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: _raw_get(mesh, host), range(8)))
    finally:
        mesh.behave(node, delay_ms=0)
    codes = sorted(status for status, _ in answers)
    assert 200 in codes, codes  # the limit admits some
    overflowed = [headers for status, headers in answers if status == 503]
    assert overflowed, codes
    assert all(h.get("x-envoy-overloaded") == "true" for h in overflowed), overflowed
    assert _overflows(mesh, "narrow") - before == len(overflowed)


def test_shadow_mode_allows_and_counts_what_it_would_deny(mesh: LocalMesh) -> None:
    (node,) = mesh.nodes_of("demo/audited")
    pattern = r"\.rbac\..*shadow_denied$"
    before = sum(mesh.stats(node, pattern).values())
    allowed = mesh.call(CLIENT, "audited", "/ok")
    would_deny = mesh.call(CLIENT, "audited", "/other", method="POST", count=3)
    assert statuses(allowed) == [200]
    assert statuses(would_deny) == [200] * 3
    assert sum(mesh.stats(node, pattern).values()) - before == 3
