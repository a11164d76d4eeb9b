"""Outputs: the Istio cacerts Secret, the SPIFFE JWKS bundle and the PEM bundle."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from reconciler.ca.issue import key_matches
from reconciler.ca.outputs import cacerts_secret, spiffe_bundle, trust_bundle_pem
from reconciler.ca.rotation import start_rotation
from tests.ca.support import new_store
from tests.helpers import NOW


def test_cacerts_secret_has_istio_plugin_layout_and_hides_its_key(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    secret = cacerts_secret(store, namespace="istio-system")
    assert sorted(secret.data) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
    inter = x509.load_pem_x509_certificate(secret.data["ca-cert.pem"])
    key = serialization.load_pem_private_key(secret.data["ca-key.pem"], password=None)
    assert key_matches(key, inter)  # type: ignore[arg-type]
    chain = x509.load_pem_x509_certificates(secret.data["cert-chain.pem"])
    assert [c.subject for c in chain] == [inter.subject, store.root_cert("root-1").subject]
    assert x509.load_pem_x509_certificates(secret.data["root-cert.pem"]) == store.trusted_roots()
    obj = secret.to_object()
    assert obj["kind"] == "Secret" and obj["metadata"] == {
        "name": "cacerts",
        "namespace": "istio-system",
        "labels": {"app.kubernetes.io/managed-by": "meshc"},
    }
    assert base64.b64decode(obj["data"]["ca-cert.pem"]) == secret.data["ca-cert.pem"]
    for text in (repr(secret), str(secret), f"{secret}"):
        assert "PRIVATE KEY" not in text and "BEGIN" not in text
        assert "ca-key.pem" in text  # the keys of the data are listed, not the values


def test_root_cert_pem_carries_both_roots_during_a_rotation(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    start_rotation(store, now=NOW, new_name="root-2")
    secret = cacerts_secret(store)
    roots = x509.load_pem_x509_certificates(secret.data["root-cert.pem"])
    assert [r.subject.rfc4514_string() for r in roots] == [
        "CN=root-1 root CA,O=cluster.local",
        "CN=root-2 root CA,O=cluster.local",
    ]
    # root-1 still issues in trust-both: the plug-in CA is still root-1's intermediate
    plugged = x509.load_pem_x509_certificate(secret.data["ca-cert.pem"])
    assert plugged.issuer == store.root_cert("root-1").subject
    assert trust_bundle_pem(store) == secret.data["root-cert.pem"]


def test_spiffe_bundle_is_a_public_jwks_whose_sequence_grows(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    first = spiffe_bundle(store, refresh_hint=120)
    assert first["spiffe_sequence"] == 1 and first["spiffe_refresh_hint"] == 120
    [key] = first["keys"]
    assert key["use"] == "x509-svid" and key["kty"] == "EC" and key["crv"] == "P-256"
    der = base64.b64decode(key["x5c"][0])
    assert x509.load_der_x509_certificate(der) == store.root_cert("root-1")
    assert "d" not in key
    start_rotation(store, now=NOW, new_name="root-2")
    second = spiffe_bundle(store)
    assert second["spiffe_sequence"] > first["spiffe_sequence"]
    assert len(second["keys"]) == 2
    assert '"d"' not in json.dumps(second)
