"""Bad input: a clear error naming the file and the problem, exit 1 or 2, no traceback."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.ca.support import NOW_ARG, assert_clean_failure, issue_command, meshd, meshd_inproc


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "st"
    result = meshd_inproc("ca", "init", "--state", str(path), *NOW_ARG)
    assert result.returncode == 0, result.stderr
    return path


def test_corrupt_root_pem(state: Path) -> None:
    cert = state / "roots" / "root-1" / "root.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    result = meshd_inproc(*issue_command(state, *NOW_ARG))
    assert_clean_failure(result, 2, str(cert), "not a valid PEM certificate")


def test_wrong_key_for_certificate(state: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert meshd_inproc("ca", "init", "--state", str(other), *NOW_ARG).returncode == 0
    key = state / "roots" / "root-1" / "intermediate-1.key"
    shutil.copyfile(other / "roots" / "root-1" / "intermediate-1.key", key)
    result = meshd_inproc(*issue_command(state, *NOW_ARG))
    assert_clean_failure(
        result, 2, str(key), "does not belong to its certificate", "wrong key for certificate"
    )


def test_expired_root(state: Path) -> None:
    later = datetime(2037, 1, 1, tzinfo=UTC)
    result = meshd_inproc(*issue_command(state), clock=later)
    assert_clean_failure(
        result, 1, "root.pem", "root root-1 expired at 2036-11-22", "meshd ca rotate"
    )


def test_missing_root_key(state: Path) -> None:
    key = state / "roots" / "root-1" / "root.key"
    key.unlink()
    result = meshd_inproc("ca", "status", "--state", str(state), *NOW_ARG)
    assert_clean_failure(result, 2, str(key), "private key file is missing")


def test_mesh_anchor_the_store_does_not_know(state: Path, tmp_path: Path) -> None:
    mesh = tmp_path / "mesh.yaml"
    unknown = "sha256:" + ":".join(["AB"] * 32)
    mesh.write_text(
        "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\nspec:\n  ca:\n"
        f"    anchors:\n    - {{name: ghost, fingerprint: '{unknown}'}}\n    issuer: ghost\n"
    )
    result = meshd_inproc("ca", "status", "--state", str(state), *NOW_ARG, "--mesh", str(mesh))
    assert_clean_failure(
        result, 2, str(mesh), "spec.ca.anchors[0] ('ghost'", "is not a root this key store knows"
    )


def test_state_from_a_newer_version(state: Path) -> None:
    path = state / "state.json"
    data = json.loads(path.read_text())
    data["version"] = 7
    path.write_text(json.dumps(data))
    result = meshd_inproc("ca", "status", "--state", str(state), *NOW_ARG)
    assert_clean_failure(
        result, 2, str(path), "state version 7 was written by a newer meshd", "upgrade meshd"
    )


def test_corrupt_state_json(state: Path) -> None:
    path = state / "state.json"
    path.write_text('{"version": 1, "roots": [')
    result = meshd_inproc("ca", "bundle", "--state", str(state), *NOW_ARG)
    assert_clean_failure(result, 2, str(path), "not valid JSON")


def test_not_before_in_the_future_is_clock_skew(state: Path) -> None:
    earlier = datetime(2026, 11, 24, tzinfo=UTC)
    result = meshd_inproc(*issue_command(state), clock=earlier)
    assert_clean_failure(
        result, 2, "root.pem", "is not valid before 2026-11-25T11:55:00", "clock skew"
    )


def test_missing_state_dir_and_double_init(tmp_path: Path, state: Path) -> None:
    result = meshd_inproc("ca", "status", "--state", str(tmp_path / "nope"), *NOW_ARG)
    assert_clean_failure(result, 2, "no CA state directory here", "meshd ca init")
    result = meshd_inproc("ca", "init", "--state", str(state), *NOW_ARG)
    assert_clean_failure(result, 2, "state.json", "a CA state already exists here")


def test_bad_flags_are_usage_errors(state: Path) -> None:
    result = meshd_inproc(*issue_command(state, "--ttl", "soon"))
    assert_clean_failure(result, 2, "--ttl 'soon' is not a duration")
    result = meshd_inproc(*issue_command(state, "--spiffe-id", "x"))
    assert_clean_failure(result, 2, "'x' is not a SPIFFE ID")
    args = ("ca", "rotate", "advance", "--state", str(state), "--auto", "--force")
    result = meshd_inproc(*args)
    assert_clean_failure(result, 2, "--auto never forces")


def test_real_binary_reports_without_traceback(state: Path) -> None:
    (state / "roots" / "root-1" / "root.pem").write_bytes(b"\x00\xff garbage")
    result = meshd("ca", "status", "--state", str(state), *NOW_ARG)
    assert_clean_failure(result, 2, "root.pem", "not a valid PEM certificate")


def test_a_second_writer_waits_for_the_lock_then_reports(state: Path) -> None:
    from reconciler.ca.errors import CAError
    from reconciler.ca.fsutil import exclusive_lock

    with exclusive_lock(state), pytest.raises(CAError) as caught:  # noqa: SIM117
        with exclusive_lock(state, wait_seconds=0.2):
            pass
    assert "another meshd has held the key store lock" in caught.value.message
    assert str(state / ".lock") in caught.value.message
    # released: the CLI proceeds
    assert meshd_inproc("ca", "status", "--state", str(state), *NOW_ARG).returncode == 0


def test_acknowledgements_are_validated(state: Path) -> None:
    add = ("ca", "consumer", "add", "--state", str(state), "proxy", "--kind", "xds")
    assert meshd_inproc(*add).returncode == 0
    result = meshd_inproc("ca", "ack", "--state", str(state), *NOW_ARG, "proxy", "--root", "abc")
    assert_clean_failure(result, 2, "'abc' is not a SHA-256 fingerprint")
    result = meshd_inproc("ca", "ack", "--state", str(state), *NOW_ARG, "../evil")
    assert_clean_failure(result, 2, "consumer name '../evil' is not a simple name")
    (state / "acks").mkdir(mode=0o700, exist_ok=True)
    (state / "acks" / "broken.json").write_text("{")
    result = meshd_inproc("ca", "status", "--state", str(state), *NOW_ARG)
    assert_clean_failure(result, 2, "broken.json", "acknowledgement is not valid JSON")
