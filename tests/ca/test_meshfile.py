"""The proposed `Mesh.spec.ca` edit: comments, other documents and user names survive."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reconciler.ca.issue import pem
from reconciler.ca.meshfile import load_mesh, mesh_diff, proposed_text
from reconciler.ca.rotation import start_rotation
from tests.ca.support import NOW_ARG, SPIFFE_A, meshd_inproc, new_store, verifies
from tests.helpers import NOW, codes, compile_files


def test_pem_anchor_keeps_its_user_name_and_other_documents_survive(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    root_pem = textwrap.indent(pem(store.root_cert("root-1")).decode(), " " * 8)
    path = tmp_path / "mesh.yaml"
    path.write_text(
        "# header comment\n"
        "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
        "spec: {ports: [{name: http, port: 80}]}\n---\n"
        "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\nspec:\n  ca:\n"
        "    anchors:\n    - name: corporate-root   # named by the security team\n"
        f"      pem: |\n{root_pem}    issuer: corporate-root\n"
    )
    start_rotation(store, now=NOW, new_name="root-2")
    mesh = load_mesh(path)
    new = proposed_text(mesh, store)
    diff = mesh_diff(mesh, new)
    assert "+    - name: root-2" in diff
    assert "-    issuer" not in diff  # corporate-root (= root-1) still issues
    assert "# header comment" in new and "# named by the security team" in new
    assert "kind: Service" in new
    assert codes(compile_files({"mesh.yaml": new})) == []


def test_flow_style_empty_spec_gets_a_block_ca_section(tmp_path: Path) -> None:
    store = new_store(tmp_path / "st")
    path = tmp_path / "mesh.yaml"
    path.write_text("apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\nspec: {}\n")
    new = proposed_text(load_mesh(path), store)
    assert "spec:\n  ca:\n    anchors:\n    - name: root-1\n" in new
    assert codes(compile_files({"mesh.yaml": new})) == []


def issue_for_csr(state: Path, csr: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`meshd ca issue` signing the CSR in `csr` for SPIFFE_A from the store at `state`."""
    return meshd_inproc(
        "ca",
        "issue",
        "--state",
        str(state),
        *NOW_ARG,
        "--spiffe-id",
        SPIFFE_A,
        "--csr",
        str(csr),
        *flags,
    )


def test_issue_signs_a_csr_with_the_requested_identity_only(tmp_path: Path) -> None:
    state = tmp_path / "st"
    assert meshd_inproc("ca", "init", "--state", str(state), *NOW_ARG).returncode == 0
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier("spiffe://cluster.local/ns/kube-system/sa/x")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    (tmp_path / "req.pem").write_bytes(csr.public_bytes(Encoding.PEM))
    out = tmp_path / "out"
    result = issue_for_csr(state, tmp_path / "req.pem", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "its key stays in the key store" not in result.stdout  # the workload kept its key
    chain = x509.load_pem_x509_certificates((out / "chain.pem").read_bytes())
    leaf = chain[0]
    assert leaf.public_key() == key.public_key()
    assert len(leaf.subject) == 0  # the CSR's subject and SANs are ignored
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [SPIFFE_A]
    from reconciler.ca.leaves import IssuedLeaf
    from reconciler.ca.store import open_store

    store = open_store(state, passphrase=None)
    assert verifies(
        IssuedLeaf(leaf, (chain[1], store.root_cert("root-1")), None), store.trusted_roots()
    )
    (tmp_path / "bad.pem").write_text("nope")
    bad = issue_for_csr(state, tmp_path / "bad.pem")
    assert (
        bad.returncode == 2
        and "bad.pem: not a readable PEM certificate signing request" in bad.stderr
    )
