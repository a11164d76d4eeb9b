"""Issuance: root -> intermediate -> X.509 SVIDs, checked with cryptography's verifier."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from reconciler.ca.errors import CAError
from reconciler.ca.issue import KeyAlgorithm, pem
from tests.ca.support import SPIFFE_A, issue, new_store, verifies, verify_svid
from tests.helpers import NOW


def test_leaf_is_an_svid_that_verifies_and_names_its_spiffe_id(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    leaf = issue(store)
    cert = leaf.certificate
    inter, root = leaf.chain
    assert verify_svid(cert, intermediates=[inter], roots=[root], now=NOW) == SPIFFE_A
    assert len(cert.subject) == 0
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical and san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        SPIFFE_A
    ]
    assert len(list(san.value)) == 1
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.not_valid_after_utc - NOW == timedelta(hours=24)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]


def test_every_certificate_has_key_identifiers_and_the_root_no_name_constraints(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path / "st")
    leaf = issue(store)
    inter, root = leaf.chain
    for cert, issuer in ((leaf.certificate, inter), (inter, root), (root, root)):
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert aki.key_identifier == issuer_ski.digest
        assert ski.digest
    with pytest.raises(x509.ExtensionNotFound):
        root.extensions.get_extension_for_class(x509.NameConstraints)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert inter.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0


def test_leaf_from_a_foreign_root_is_rejected(tmp_path: Path) -> None:
    ours = new_store(tmp_path / "ours")
    theirs = new_store(tmp_path / "theirs")
    foreign = issue(theirs)
    assert verifies(foreign, theirs.trusted_roots())
    assert not verifies(foreign, ours.trusted_roots())


def test_leaf_never_outlives_its_intermediate(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    leaf = issue(store, lifetime=timedelta(days=4000))
    assert leaf.certificate.not_valid_after_utc == leaf.chain[0].not_valid_after_utc


def test_rsa_is_selectable(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st", algorithm=KeyAlgorithm.RSA_2048)
    leaf = issue(store)
    key = leaf.certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    assert verifies(leaf, store.trusted_roots())


def test_foreign_trust_domain_is_refused(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    with pytest.raises(CAError, match=re.escape("trust domain 'other.org' is not this CA's")):
        issue(store, "spiffe://other.org/ns/a/sa/b")
    with pytest.raises(CAError, match="is not a SPIFFE ID"):
        issue(store, "https://cluster.local/ns/a")


def openssl_verify(
    openssl: str, folder: Path, ca_file: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    """`openssl verify` of folder's leaf.pem through inter.pem against `ca_file`, at NOW."""
    return subprocess.run(
        [
            openssl,
            "verify",
            "-attime",
            str(int(NOW.timestamp())),
            "-CAfile",
            ca_file,
            "-untrusted",
            "inter.pem",
            *flags,
            "leaf.pem",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def test_system_openssl_agrees(tmp_path: Path) -> None:
    """An independent X.509 implementation accepts the chain (tests only; the product never
    shells out to openssl)."""
    store = new_store(tmp_path / "st")
    leaf = issue(store)
    inter, root = leaf.chain
    openssl = shutil.which("openssl")
    if openssl is None:
        print("SKIPPED ASSERTION: system openssl not found; cryptography's verifier checked it")
        pytest.skip("openssl not installed")
    (tmp_path / "root.pem").write_bytes(pem(root))
    (tmp_path / "inter.pem").write_bytes(pem(inter))
    (tmp_path / "leaf.pem").write_bytes(pem(leaf.certificate))
    result = openssl_verify(openssl, tmp_path, "root.pem", "-purpose", "sslclient")
    assert result.returncode == 0 and "leaf.pem: OK" in result.stdout, result.stdout + result.stderr
    other = new_store(tmp_path / "other")
    (tmp_path / "other.pem").write_bytes(pem(other.trusted_roots()[0]))
    result = openssl_verify(openssl, tmp_path, "other.pem")
    assert result.returncode != 0
