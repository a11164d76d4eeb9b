"""Key custody: no private key in any output, file outside the key store, error or repr;
key files private; encryption at rest."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reconciler.ca.errors import CAError
from reconciler.ca.outputs import cacerts_secret
from reconciler.ca.store import Passphrase, open_store
from tests.ca.support import (
    MESH_YAML,
    NOW_ARG,
    assert_clean_failure,
    issue_command,
    meshd,
    meshd_inproc,
)

PASSPHRASE = "correct horse battery staple"
PEM_KEY_HEADER = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
JWK_D = re.compile(r'"d"\s*:')


def key_needles(state: Path) -> set[str]:
    """Every form a store key could leak in: its PEM lines (as stored, and unencrypted
    PKCS#8), its DER in one base64 run, and the JWK `d` value."""
    needles: set[str] = set()
    for path in state.rglob("*.key"):
        raw = path.read_bytes()
        needles.update(line for line in raw.decode().splitlines() if len(line) >= 40)
        key = serialization.load_pem_private_key(raw, password=PASSPHRASE.encode())
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        # PKCS#8 for EC ends with the public point, which certificates rightly carry: only
        # the bytes before it are secret.
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        secret_der = der[: der.index(point)]
        plain = base64.b64encode(secret_der).decode()
        needles.update(plain[i : i + 40] for i in range(0, len(plain) - 40, 4))
        if isinstance(key, ec.EllipticCurvePrivateKey):
            d = key.private_numbers().private_value.to_bytes(32, "big")
            needles.add(base64.urlsafe_b64encode(d).rstrip(b"=").decode())
            needles.add(d.hex())
    return needles


def test_no_command_leaks_a_key_anywhere(tmp_path: Path) -> None:
    state, mesh, out = tmp_path / "st", tmp_path / "mesh.yaml", tmp_path / "out"
    keys = tmp_path / "keys"  # workload keys the user asked for: theirs, not output
    keys.mkdir()
    mesh.write_text(MESH_YAML)
    env = {"MESHD_CA_PASSPHRASE": PASSPHRASE}
    common = ("--state", str(state), *NOW_ARG)
    commands: list[tuple[str, ...]] = [
        ("ca", "init", *common, "--mesh", str(mesh), "--write"),
        ("ca", "status", *common, "--mesh", str(mesh)),
        ("ca", "status", *common, "--format", "json"),
        ("ca", "status", *common, "--format", "prometheus"),
        ("ca", "consumer", "add", *common, "proxy", "--kind", "xds"),
        ("ca", "consumer", "list", *common),
        (
            "ca",
            "issue",
            *common,
            "--namespace",
            "shop",
            "--service-account",
            "web",
            "--key-out",
            str(keys / "web.key"),
        ),
        (
            "ca",
            "issue",
            *common,
            "--spiffe-id",
            "spiffe://cluster.local/ns/a/sa/b",
            "--out",
            str(out),
            "--key-out",
            str(keys / "b.key"),
        ),
        ("ca", "bundle", *common),
        ("ca", "bundle", *common, "--format", "spiffe"),
        ("ca", "rotate", "start", *common, "--mesh", str(mesh), "--write"),
        ("ca", "rotate", "advance", *common),  # refused: gate 1
        ("ca", "ack", *common, "proxy"),
        ("ca", "rotate", "advance", *common, "--auto", "--mesh", str(mesh), "--write"),
        ("ca", "rotate", "intermediate", *common),
        ("ca", "rotate", "advance", *common, "--force", "--mesh", str(mesh)),
        ("ca", "status", *common),
    ]
    outputs: list[str] = []
    for args in commands:
        result = meshd_inproc(*args, env=env)
        outputs.append(result.stdout + result.stderr)
        assert result.returncode in (0, 1), (args, result.stdout, result.stderr)
    # error paths carry no key either
    wrong = meshd_inproc(*issue_command(state, *NOW_ARG), env={"MESHD_CA_PASSPHRASE": "wrong"})
    assert wrong.returncode == 2 and "cannot decrypt the private key" in wrong.stderr
    outputs.append(wrong.stdout + wrong.stderr)
    real = meshd("ca", "status", *common, "--mesh", str(mesh), env=env)  # the real binary too
    assert real.returncode == 0, real.stderr
    outputs.append(real.stdout + real.stderr)
    store = open_store(state, passphrase=Passphrase(PASSPHRASE.encode()))
    secret = cacerts_secret(store)
    outputs += [repr(secret), str(secret), repr(store)]
    outside = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and state not in p.parents and keys not in p.parents
    ]
    assert mesh in outside and out / "chain.pem" in outside
    outputs += [p.read_text(errors="replace") for p in outside]

    needles = key_needles(state)
    assert len(needles) > 20
    for text in outputs:
        assert not PEM_KEY_HEADER.search(text), text
        assert not JWK_D.search(text), text
        assert PASSPHRASE not in text
        leaked = [n for n in needles if n in text]
        assert not leaked, f"key material in output: {text[:200]}"
    # and the keys at rest are encrypted
    for path in state.rglob("*.key"):
        assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), path
        assert path.stat().st_mode & 0o777 == 0o600
    for path in [state, *[p for p in state.rglob("*") if p.is_dir()]]:
        assert path.stat().st_mode & 0o777 == 0o700, path


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "st"
    assert meshd_inproc("ca", "init", "--state", str(state), *NOW_ARG).returncode == 0
    key = state / "roots" / "root-1" / "root.key"
    os.chmod(key, 0o640)
    result = meshd_inproc("ca", "status", "--state", str(state), *NOW_ARG)
    assert_clean_failure(result, 2, str(key), "accessible to group/others (mode 0640)", "chmod 600")


def test_encrypted_store_without_passphrase_names_the_remedy(tmp_path: Path) -> None:
    state = tmp_path / "st"
    env = {"MESHD_CA_PASSPHRASE": PASSPHRASE}
    assert meshd_inproc("ca", "init", "--state", str(state), *NOW_ARG, env=env).returncode == 0
    result = meshd_inproc(*issue_command(state, *NOW_ARG), env={"MESHD_CA_PASSPHRASE": ""})
    assert_clean_failure(
        result, 2, "is encrypted and no passphrase was given", "MESHD_CA_PASSPHRASE"
    )


def test_passphrase_file_works_and_its_repr_hides_it(tmp_path: Path) -> None:
    secret_file = tmp_path / "pass.txt"
    secret_file.write_text(PASSPHRASE + "\n")
    state = tmp_path / "st"
    args = ("--state", str(state), *NOW_ARG, "--passphrase-file", str(secret_file))
    assert meshd_inproc("ca", "init", *args).returncode == 0
    issued = meshd_inproc(*issue_command(state, "--passphrase-file", str(secret_file)))
    assert issued.returncode == 0, issued.stderr
    assert "-----BEGIN CERTIFICATE-----" in issued.stdout
    assert PASSPHRASE not in repr(Passphrase(PASSPHRASE.encode()))


def test_errors_about_keys_never_carry_key_bytes(tmp_path: Path) -> None:
    state = tmp_path / "st"
    assert meshd_inproc("ca", "init", "--state", str(state), *NOW_ARG).returncode == 0
    key = state / "roots" / "root-1" / "intermediate-1.key"
    body = key.read_text()
    key.write_text(body[:-80])  # truncated key
    store = open_store(state, passphrase=None)
    with pytest.raises(CAError) as caught:
        store.intermediate_key("root-1")
    text = f"{caught.value} {caught.value!r}"
    assert "not a valid PEM private key" in text and str(key) in text
    assert not any(line in text for line in body.splitlines() if len(line) > 20)
    assert json.dumps(text)  # printable
