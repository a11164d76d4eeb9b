"""`meshd run` as a service: probes, metrics, the webhook, suspend/resume/reconcile."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.source.webhook import sign
from tests.helpers import run_cli
from tests.run.support import EXTRA_SERVICE, commit_file, head, meshd_process, policy_repo


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def _until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _applied(state: Path) -> str | None:
    try:
        document = json.loads((state / "state.json").read_text())
    except (OSError, ValueError):
        return None
    revision: str | None = document.get("last_applied_revision")
    return revision


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, Path, str, bytes]]:
    repo = policy_repo(tmp_path / "repo")
    secret = b"hook-secret"
    (tmp_path / "secret").write_bytes(secret)
    base = f"http://127.0.0.1:{_free_port()}"
    process = meshd_process(
        "run",
        "--repo",
        str(repo),
        "--path",
        "policies",
        "--target",
        "directory",
        "--out",
        str(tmp_path / "out"),
        "--state",
        str(tmp_path / "state"),
        "--interval",
        "1h",
        "--listen",
        base.removeprefix("http://"),
        "--webhook-secret-file",
        str(tmp_path / "secret"),
    )
    try:
        _until(lambda: _get(base + "/readyz")[0] == 200, "the first pass")
        yield repo, tmp_path / "state", base, secret
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "Traceback" not in err


def test_probes_metrics_and_the_webhook(served: tuple[Path, Path, str, bytes]) -> None:
    repo, state, base, secret = served
    assert _get(base + "/healthz")[0] == 200
    status, metrics = _get(base + "/metrics")
    assert status == 200 and 'meshd_reconcile_total{counter="applied"} 1' in metrics
    assert "meshd_ready 1" in metrics
    added = commit_file(repo, "extra.yaml", EXTRA_SERVICE, "B")
    body = b'{"ref": "refs/heads/main"}'
    wrong = _get(base + "/hook", body, {"X-Hub-Signature-256": sign(b"guess", body)})
    assert wrong[0] == 401
    assert _get(base + "/hook", body)[0] == 401
    time.sleep(1)
    assert _applied(state) != added  # the interval is an hour: nothing fetched yet
    assert _get(base + "/hook", body, {"X-Hub-Signature-256": sign(secret, body)})[0] == 202
    _until(lambda: _applied(state) == added, "the hooked revision to apply")
    assert "meshd_webhook_rejected_total 2" in _get(base + "/metrics")[1]


def test_suspend_resume_and_reconcile(served: tuple[Path, Path, str, bytes]) -> None:
    repo, state, _, _ = served
    assert run_cli("meshd", "suspend", "--state", str(state)).returncode == 0
    added = commit_file(repo, "extra.yaml", EXTRA_SERVICE, "B")
    assert run_cli("meshd", "reconcile", "--state", str(state)).returncode == 0
    time.sleep(2)
    assert _applied(state) != added
    shown = run_cli("meshd", "status", "--state", str(state))
    assert "suspended:  yes" in shown.stdout
    assert run_cli("meshd", "resume", "--state", str(state)).returncode == 0
    _until(lambda: _applied(state) == added, "the resumed pass")
    assert head(repo) == added
