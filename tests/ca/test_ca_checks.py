"""Compiler-side CA rules MC420–MC429 over `Mesh.spec.ca` (pure: certificates only)."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from compiler.kinds.mesh.anchors import fingerprint
from reconciler.ca.issue import pem
from tests.ca.support import issue, new_store
from tests.helpers import NOW, codes, compile_files, findings


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, x509.Certificate]:
    store = new_store(tmp_path_factory.mktemp("ca") / "st")
    leaf = issue(store)
    other = new_store(tmp_path_factory.mktemp("ca2") / "st")
    return {
        "root": store.root_cert("root-1"),
        "inter": leaf.chain[0],
        "leaf": leaf.certificate,
        "other": other.root_cert("root-1"),
    }


def block(text: str | bytes, indent: int = 8) -> str:
    body = text.decode() if isinstance(text, bytes) else text
    return textwrap.indent(body, " " * indent)


def mesh(anchors: str, *, issuer: str = "root", extra: str = "") -> dict[str, str]:
    return {
        "mesh.yaml": (
            "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: m}\nspec:\n  ca:\n"
            f"    anchors:\n{anchors}    issuer: {issuer}\n{extra}"
        )
    }


def pem_anchor(name: str, text: str | bytes) -> str:
    return f"    - name: {name}\n      pem: |\n{block(text)}"


def fp_anchor(name: str, fp: str) -> str:
    return f"    - name: {name}\n      fingerprint: '{fp}'\n"


def ca_codes(files: dict[str, str], now=NOW) -> list[str]:  # type: ignore[no-untyped-def]
    return [c for c in codes(compile_files(files, now=now)) if c.startswith("MC42")]


def test_a_valid_ca_section_is_clean(certs: dict[str, x509.Certificate]) -> None:
    files = mesh(
        pem_anchor("root", pem(certs["root"])) + fp_anchor("next", fingerprint(certs["other"]))
    )
    assert ca_codes(files) == []


def test_mc420_issuer_names_no_anchor(certs: dict[str, x509.Certificate]) -> None:
    files = mesh(fp_anchor("root", fingerprint(certs["root"])), issuer="root-2026")
    compilation = compile_files(files)
    [finding] = findings(compilation, "MC420")
    assert "issuer 'root-2026' names no anchor" in finding.message
    assert finding.span.line == 9  # the issuer line


def test_mc421_unparsable_or_multiple_certificates(certs: dict[str, x509.Certificate]) -> None:
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    files = mesh(pem_anchor("root", broken))
    [finding] = findings(compile_files(files), "MC421")
    assert "certificate block 1 is not valid X.509" in finding.message
    two = pem(certs["root"]) + pem(certs["other"])
    [finding] = findings(compile_files(mesh(pem_anchor("root", two))), "MC421")
    assert "holds 2 certificates" in finding.message
    [finding] = findings(compile_files(mesh(pem_anchor("root", "hello\n"))), "MC421")
    assert "holds no PEM certificate block" in finding.message


def test_mc422_private_key_in_git_is_reported_without_echoing_it(
    certs: dict[str, x509.Certificate], tmp_path: Path
) -> None:
    store = new_store(tmp_path / "st")
    key_pem = store.root_key_path("root-1").read_text()
    files = mesh(pem_anchor("root", pem(store.root_cert("root-1")).decode() + key_pem))
    compilation = compile_files(files)
    [finding] = findings(compilation, "MC422")
    assert "contains a private key (content not shown)" in finding.message
    body = [line for line in key_pem.splitlines() if "-----" not in line]
    for diagnostic in compilation.diagnostics:
        assert not any(line in diagnostic.message + diagnostic.hint for line in body)


def test_mc423_and_mc424_leaf_or_intermediate_as_anchor(certs: dict[str, x509.Certificate]) -> None:
    leaf_files = mesh(pem_anchor("root", pem(certs["leaf"])))
    # a 24 h leaf also expires within 90 days (MC428)
    assert sorted(ca_codes(leaf_files)) == ["MC423", "MC424", "MC428"]
    [finding] = findings(compile_files(leaf_files), "MC423")
    assert "basicConstraints CA:FALSE" in finding.message
    inter_files = mesh(pem_anchor("root", pem(certs["inter"])))
    assert ca_codes(inter_files) == ["MC424"]
    [finding] = findings(compile_files(inter_files), "MC424")
    assert "is not self-signed" in finding.message and "root-1 root CA" in finding.message


def test_mc425_duplicate_fingerprint_in_any_spelling(certs: dict[str, x509.Certificate]) -> None:
    fp = fingerprint(certs["root"])
    relaxed = "sha256:" + fp.removeprefix("sha256:").replace(":", "").lower()
    files = mesh(pem_anchor("root", pem(certs["root"])) + fp_anchor("copy", relaxed))
    [finding] = findings(compile_files(files), "MC425")
    assert f"anchor 'copy' is the same root as anchor 'root' ({fp})" in finding.message


def test_mc426_duplicate_anchor_name(certs: dict[str, x509.Certificate]) -> None:
    files = mesh(
        fp_anchor("root", fingerprint(certs["root"]))
        + fp_anchor("root", fingerprint(certs["other"]))
    )
    [finding] = findings(compile_files(files), "MC426")
    assert "anchor name 'root' is used twice" in finding.message


def test_mc427_and_mc428_expiry(certs: dict[str, x509.Certificate]) -> None:
    files = mesh(pem_anchor("root", pem(certs["root"])))
    after = certs["root"].not_valid_after_utc
    assert ca_codes(files, now=after + timedelta(days=1)) == ["MC427"]
    [finding] = findings(compile_files(files, now=after + timedelta(days=1)), "MC427")
    assert "root expired at" in finding.message
    assert ca_codes(files, now=after - timedelta(days=30)) == ["MC428"]
    [finding] = findings(compile_files(files, now=after - timedelta(days=30)), "MC428")
    assert "root expires in 30 days" in finding.message
    early = compile_files(files, now=NOW - timedelta(days=2))
    [finding] = findings(early, "MC427")
    assert "root is not valid before" in finding.message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "    intermediateTTL: 24h\n    workloadTTL: 48h\n    renewBefore: 12h\n",
            [
                "workloadTTL 48h is not shorter than intermediateTTL 24h",
                "renewBefore 12h is not longer than workloadTTL 48h: leaves issued just before "
                "renewal would outlive their intermediate",
            ],
        ),
        (
            "    rootTTL: 100h\n    intermediateTTL: 200h\n    renewBefore: 300h\n",
            [
                "intermediateTTL 200h is longer than rootTTL 100h",
                "renewBefore 300h is not shorter than intermediateTTL 200h: the intermediate "
                "would renew on every run",
            ],
        ),
    ],
    ids=["leaf-and-renewal", "intermediate-and-renewal"],
)
def test_mc429_lifetimes_must_nest(
    certs: dict[str, x509.Certificate], extra: str, expected: list[str]
) -> None:
    files = mesh(fp_anchor("root", fingerprint(certs["root"])), extra=extra)
    messages = [f.message for f in findings(compile_files(files), "MC429")]
    assert messages == expected
