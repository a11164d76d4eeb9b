"""Refused CA commands: a clear message, the right exit code, and the store left
byte-identical (hashed before and after)."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from reconciler.ca.issue import key_matches
from tests.ca.support import (
    MESH_YAML,
    assert_clean_failure,
    issue_command,
    meshd_inproc,
    tree_digest,
)
from tests.helpers import NOW


def ca(state: Path, *args: str, clock: object = NOW, env: dict[str, str] | None = None) -> str:
    result = meshd_inproc("ca", *args, "--state", str(state), env=env, clock=clock)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "st"
    ca(path, "init")
    return path


# -- 6: the passphrase is checked against a stored key --------------------------------


def test_a_wrong_passphrase_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("correct horse\n")
    wrong.write_text("battery staple\n")
    state = tmp_path / "st"
    ca(state, "init", "--passphrase-file", str(right))
    ca(state, "consumer", "add", "proxy", "--kind", "xds", "--passphrase-file", str(right))
    before = tree_digest(state)
    for command in (
        ("rotate", "start"),
        ("rotate", "intermediate"),
        ("status",),
        ("consumer", "add", "other", "--kind", "file"),
    ):
        args = ("ca", *command, "--state", str(state), "--passphrase-file", str(wrong))
        result = meshd_inproc(*args)
        assert_clean_failure(result, 2, "root.key", "cannot decrypt the private key")
        assert tree_digest(state) == before, command
    ca(state, "rotate", "start", "--passphrase-file", str(right))  # the right one still works


def test_a_passphrase_for_an_unencrypted_store_is_refused(state: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text("something\n")
    before = tree_digest(state)
    args = ("ca", "rotate", "intermediate", "--state", str(state))
    result = meshd_inproc(*args, "--passphrase-file", str(secret))
    assert_clean_failure(result, 2, "keeps its keys unencrypted", "drop --passphrase-file")
    assert tree_digest(state) == before


# -- 7: a --now away from the clock never reaches the store ---------------------------


def test_a_future_now_on_a_writing_command_is_refused(state: Path) -> None:
    before = tree_digest(state)
    result = meshd_inproc(*issue_command(state, "--now", "2028-06-01T00:00:00Z"))
    assert_clean_failure(result, 2, "--now 2028-06-01", "more than 5 minutes away from the clock")
    assert tree_digest(state) == before
    for command in (("status",), ("bundle",)):  # still usable: nothing was made in 2028
        assert meshd_inproc("ca", *command, "--state", str(state)).returncode == 0
    # reading commands may still look at another time; within the skew writing ones may too
    later = (NOW + timedelta(days=30)).isoformat()
    assert meshd_inproc("ca", "status", "--state", str(state), "--now", later).returncode == 0
    near = (NOW + timedelta(minutes=4)).isoformat()
    assert meshd_inproc(*issue_command(state, "--now", near)).returncode == 0


# -- 8: registered consumers, known roots, Git first ----------------------------------


def test_consumers_are_registered_listed_and_removed(state: Path) -> None:
    assert "no consumer registered" in ca(state, "consumer", "list")
    ca(state, "consumer", "add", "edge", "--kind", "xds")
    ca(state, "consumer", "add", "k8s", "--kind", "kubernetes")
    ca(state, "ack", "edge")
    listing = ca(state, "consumer", "list")
    assert "edge (xds): root-1" in listing and "k8s (kubernetes): nothing acknowledged" in listing
    before = tree_digest(state)
    again = meshd_inproc("ca", "consumer", "add", "edge", "--kind", "file", "--state", str(state))
    assert_clean_failure(again, 1, "consumer 'edge' is already registered")
    assert tree_digest(state) == before
    ca(state, "consumer", "remove", "k8s")
    assert "k8s" not in ca(state, "consumer", "list")


def test_a_rotation_needs_registered_consumers_and_waits_for_all(state: Path) -> None:
    before = tree_digest(state)
    result = meshd_inproc("ca", "rotate", "start", "--state", str(state))
    assert_clean_failure(result, 1, "no trust-bundle consumer is registered", "consumer add")
    assert tree_digest(state) == before
    ca(state, "consumer", "add", "edge", "--kind", "xds")
    ca(state, "consumer", "add", "k8s", "--kind", "kubernetes")
    ca(state, "rotate", "start")
    ca(state, "ack", "edge")
    before = tree_digest(state)
    result = meshd_inproc("ca", "rotate", "advance", "--state", str(state))
    assert_clean_failure(result, 1, "gate not met", "not yet reporting it: k8s")
    # an acknowledgement from a consumer nobody registered is refused, not counted
    result = meshd_inproc("ca", "ack", "ghost", "--state", str(state))
    assert_clean_failure(result, 1, "consumer 'ghost' is not registered", "consumer add ghost")
    assert tree_digest(state) == before


def test_ack_refuses_a_root_the_ca_does_not_know(state: Path) -> None:
    ca(state, "consumer", "add", "edge", "--kind", "xds")
    before = tree_digest(state)
    unknown = "sha256:" + ":".join(["AB"] * 32)
    result = meshd_inproc("ca", "ack", "edge", "--root", unknown, "--state", str(state))
    assert_clean_failure(result, 2, "is not a root of this CA", "`meshd ca status` lists")
    assert tree_digest(state) == before


def test_the_switch_waits_until_the_mesh_in_git_trusts_the_new_root(
    state: Path, tmp_path: Path
) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text(MESH_YAML)
    ca(state, "rotate", "mesh-edit", "--mesh", str(mesh), "--write")
    ca(state, "consumer", "add", "edge", "--kind", "xds")
    ca(state, "rotate", "start")
    ca(state, "ack", "edge")
    before = tree_digest(state)
    args = ("ca", "rotate", "advance", "--state", str(state), "--mesh", str(mesh))
    for extra in ((), ("--force",)):  # forcing skips waits, never this
        result = meshd_inproc(*args, *extra)
        assert_clean_failure(
            result,
            1,
            "the Mesh document does not trust the new root root-2",
            "write the anchor for root-2 with `meshd ca rotate mesh-edit --mesh FILE --write`, "
            "commit and merge it",
        )
        assert tree_digest(state) == before
    ca(state, "rotate", "mesh-edit", "--mesh", str(mesh), "--write")
    assert "phase issue-from-new" in ca(state, "rotate", "advance", "--mesh", str(mesh))


# -- 9: start and advance, byte-identical refusals, init's advice, --ttl, keys ---------


def test_advance_never_starts_and_start_never_advances(state: Path) -> None:
    ca(state, "consumer", "add", "edge", "--kind", "xds")
    before = tree_digest(state)
    result = meshd_inproc("ca", "rotate", "advance", "--state", str(state))
    assert_clean_failure(result, 1, "no rotation in progress", "meshd ca rotate start")
    assert tree_digest(state) == before
    ca(state, "rotate", "start")
    before = tree_digest(state)
    result = meshd_inproc("ca", "rotate", "start", "--state", str(state))
    assert_clean_failure(result, 1, "a rotation is already in phase trust-both", "rotate advance")
    assert tree_digest(state) == before


def test_refused_commands_leave_the_store_byte_identical(state: Path, tmp_path: Path) -> None:
    bad_csr = tmp_path / "bad.csr"
    bad_csr.write_text("not a csr")
    refused = [
        ("ca", "init", "--state", str(state)),
        (*issue_command(state, "--spiffe-id", "spiffe://other.domain/ns/a/sa/b"),),
        ("ca", "issue", "--state", str(state), "--spiffe-id", "x", "--csr", str(bad_csr)),
        ("ca", "issue", "--state", str(state), "--namespace", "a", "--service-account", "b"),
        (*issue_command(state, "--ttl", "soon"),),
        ("ca", "rotate", "advance", "--state", str(state), "--auto", "--force"),
        ("ca", "rotate", "start", "--state", str(state), "--write"),
        ("ca", "consumer", "remove", "nobody", "--state", str(state)),
        ("ca", "ack", "../evil", "--state", str(state)),
    ]
    before = tree_digest(state)
    for args in refused:
        result = meshd_inproc(*args)
        assert result.returncode in (1, 2), (args, result.stdout)
        assert "Traceback" not in result.stdout + result.stderr
        assert tree_digest(state) == before, args


def test_init_advice_and_its_rerun_agree(tmp_path: Path) -> None:
    state, mesh = tmp_path / "st", tmp_path / "mesh.yaml"
    mesh.write_text(MESH_YAML)
    advice = ca(state, "init")
    assert f"meshd ca rotate mesh-edit --state {state} --mesh FILE" in advice
    before = tree_digest(state)
    rerun = meshd_inproc("ca", "init", "--state", str(state), "--mesh", str(mesh), "--write")
    assert_clean_failure(rerun, 2, "a CA state already exists here", "rotate mesh-edit --mesh FILE")
    assert tree_digest(state) == before
    out = ca(state, "rotate", "mesh-edit", "--mesh", str(mesh), "--write")  # what both say
    assert f"wrote {mesh}" in out and "issuer: root-1" in mesh.read_text()


def test_a_ttl_beyond_the_intermediate_is_cut_and_said(state: Path) -> None:
    result = meshd_inproc(*issue_command(state, "--ttl", "9999h"))
    assert result.returncode == 0, result.stderr
    assert "note: --ttl 9999h cut to the intermediate's expiry 2027-11-25T" in result.stderr
    quiet = meshd_inproc(*issue_command(state, "--ttl", "48h"))
    assert quiet.returncode == 0 and "note:" not in quiet.stderr


def test_issue_writes_the_workload_key_where_asked_and_keeps_none(
    state: Path, tmp_path: Path
) -> None:
    key_path = tmp_path / "web.key"
    base = ("ca", "issue", "--state", str(state), "--namespace", "a", "--service-account", "b")
    result = meshd_inproc(*base)
    assert_clean_failure(result, 2, "give exactly one of --csr", "--key-out")
    result = meshd_inproc(*base, "--key-out", str(key_path))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificates(result.stdout.encode())[0]
    assert key_matches(key, cert)  # type: ignore[arg-type]
    assert not (state / "leaves").exists() or not any((state / "leaves").glob("*.key"))
    before = tree_digest(state)
    again = meshd_inproc(*base, "--key-out", str(key_path))
    assert_clean_failure(again, 2, str(key_path), "file exists")
    assert tree_digest(state) == before


# -- 10: trust domain, unusable --state ------------------------------------------------


def test_init_refuses_a_trust_domain_spiffe_does_not_allow(tmp_path: Path) -> None:
    state = tmp_path / "st"
    result = meshd_inproc("ca", "init", "--state", str(state), "--trust-domain", "Bad Domain!")
    assert_clean_failure(result, 2, "'Bad Domain!' is not a SPIFFE trust domain", "cluster.local")
    assert not state.exists()


def test_a_state_path_that_cannot_be_created_is_a_clear_error() -> None:
    result = meshd_inproc("ca", "init", "--state", "/proc/nope")
    assert_clean_failure(result, 2, "/proc/nope: cannot create the directory", "--state")
    assert "internal error" not in result.stderr
