"""Lint rules over `Mesh.spec.ca`, the public side of the mesh CA (MC420–MC429).

The compiler sees only what Git holds: anchor fingerprints or public PEMs and the name of
the active issuer. Whether the key store really holds those roots is the reconciler's check
(`meshd ca status --mesh FILE`); whether live leaves still need an anchor is the plan's
(`meshc plan --ca-status FILE`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from compiler.diagnostics import Severity
from compiler.kinds.common import duration_ms
from compiler.kinds.mesh.anchors import anchor_fingerprints, parse_anchor_pem
from compiler.kinds.mesh.model import CertificateAuthority, MeshDocument
from compiler.lint.registry import Finding, LintContext, rule
from compiler.validate import Intent

if TYPE_CHECKING:  # cryptography is imported where a certificate is read: most meshes have none
    from cryptography import x509

EXPIRY_WARNING = timedelta(days=90)


def _ca(ctx: LintContext) -> tuple[Intent[MeshDocument], CertificateAuthority] | None:
    mesh = ctx.model.mesh
    if mesh is None or mesh.model.spec.ca is None:
        return None
    return mesh, mesh.model.spec.ca


def _pem_anchors(
    ctx: LintContext,
) -> Iterator[tuple[Intent[MeshDocument], int, str, list[x509.Certificate]]]:
    """(mesh, index, name, certificates) of every PEM anchor that parses to one certificate."""
    found = _ca(ctx)
    if found is None:
        return
    mesh, ca = found
    for index, anchor in enumerate(ca.anchors):
        if anchor.pem is None:
            continue
        parsed = parse_anchor_pem(anchor.pem)
        if parsed.error is None:
            yield mesh, index, anchor.name, parsed.certificates


@rule("MC420", "ca-issuer-not-anchor", Severity.ERROR)
def issuer_not_anchor(ctx: LintContext) -> Iterable[Finding]:
    """The active issuer names no trusted anchor.

    **What it does.** Checks that `Mesh.spec.ca.issuer` is the name of one of
    `Mesh.spec.ca.anchors`.

    **Why is this bad.** Workload certificates are issued by an intermediate under the issuer's
    root. If that root is not in the trust bundle, every peer rejects the new certificates and
    mTLS fails mesh-wide as leaves renew.

    **Example.**
    ```yaml
    ca:
      anchors: [{name: root-2025, fingerprint: "sha256:AB:..."}]
      issuer: root-2026
    ```

    **Use instead.** Add `root-2026` to `anchors` first (phase `trust-both` of a rotation, as
    `meshd ca rotate start` proposes), or name an existing anchor.
    """
    found = _ca(ctx)
    if found is None:
        return
    mesh, ca = found
    names = [anchor.name for anchor in ca.anchors]
    if ca.issuer not in names:
        yield Finding(
            mesh.span("ca", "issuer"),
            f"Mesh.spec.ca.issuer {ca.issuer!r} names no anchor in Mesh.spec.ca.anchors",
            "name one of " + ", ".join(repr(n) for n in names) + ", or add the anchor first",
        )


@rule("MC421", "ca-anchor-pem-invalid", Severity.ERROR)
def anchor_pem_invalid(ctx: LintContext) -> Iterable[Finding]:
    """An anchor's `pem:` is not exactly one X.509 certificate.

    **What it does.** Parses each `pem:` anchor and reports one that holds no certificate
    block, a corrupt one, or several certificates.

    **Why is this bad.** An anchor that cannot be parsed trusts nothing: the roots the mesh
    relies on silently drop out of the trust bundle. Several certificates in one anchor hide
    which root is meant and cannot be rotated one at a time.

    **Example.** `pem: "-----BEGIN CERTIFICATE-----\\nMIIB...truncated"`

    **Use instead.** Paste the complete root certificate, one per anchor, or give its
    `fingerprint: sha256:...` instead.
    """
    found = _ca(ctx)
    if found is None:
        return
    mesh, ca = found
    for index, anchor in enumerate(ca.anchors):
        if anchor.pem is None:
            continue
        parsed = parse_anchor_pem(anchor.pem)
        if parsed.error is not None:
            yield Finding(
                mesh.span("ca", "anchors", index, "pem"),
                f"anchor {anchor.name!r}: pem {parsed.error}",
                "paste exactly one complete root certificate, or use fingerprint: sha256:...",
            )


@rule("MC422", "ca-anchor-private-key", Severity.ERROR)
def anchor_private_key(ctx: LintContext) -> Iterable[Finding]:
    """An anchor's `pem:` contains a private key.

    **What it does.** Looks for a PEM private-key block (`-----BEGIN ... PRIVATE KEY-----`)
    inside an anchor's `pem:` value.

    **Why is this bad.** Git holds the public side only. A CA key in the policy repository
    lets anyone with read access mint certificates for every identity in the mesh; it must
    be considered compromised and the root rotated.

    **Example.** `pem: "-----BEGIN CERTIFICATE-----...-----BEGIN EC PRIVATE KEY-----..."`

    **Use instead.** Keep only the certificate (or its fingerprint) in Git; remove the key
    from the repository history and rotate the root with `meshd ca rotate start`.
    """
    found = _ca(ctx)
    if found is None:
        return
    mesh, ca = found
    for index, anchor in enumerate(ca.anchors):
        if anchor.pem is not None and parse_anchor_pem(anchor.pem).has_private_key:
            yield Finding(
                mesh.span("ca", "anchors", index, "pem"),
                f"anchor {anchor.name!r}: pem contains a private key (content not shown)",
                "remove the key from Git and its history, keep only the certificate, and "
                "rotate the root (`meshd ca rotate start`): the key must be treated as leaked",
            )


@rule("MC423", "ca-anchor-not-ca", Severity.ERROR)
def anchor_not_ca(ctx: LintContext) -> Iterable[Finding]:
    """An anchor's certificate is not a CA certificate.

    **What it does.** Requires `basicConstraints: CA:TRUE` and, when key usage is present,
    `keyCertSign` on every PEM anchor.

    **Why is this bad.** A leaf or server certificate pasted as an anchor cannot sign
    intermediates; X.509 verifiers refuse chains through it, so trust silently breaks.

    **Example.** An anchor whose PEM is a workload certificate (`CA:FALSE`).

    **Use instead.** Paste the root CA certificate (`meshd ca bundle` prints the roots).
    """
    for mesh, index, name, certificates in _pem_anchors(ctx):
        cert = certificates[0]
        problem = _ca_problem(cert)
        if problem:
            yield Finding(
                mesh.span("ca", "anchors", index, "pem"),
                f"anchor {name!r}: {problem}",
                "use the root CA certificate (`meshd ca bundle` prints it), not a leaf",
            )


def _ca_problem(cert: x509.Certificate) -> str | None:
    from cryptography import x509

    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "certificate has no basicConstraints, so it is not a CA certificate"
    if not constraints.ca:
        return "certificate has basicConstraints CA:FALSE, so it cannot issue certificates"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return None if usage.key_cert_sign else "certificate's key usage lacks keyCertSign"


@rule("MC424", "ca-anchor-not-self-signed", Severity.WARNING)
def anchor_not_self_signed(ctx: LintContext) -> Iterable[Finding]:
    """An anchor's certificate is not self-signed (not a root).

    **What it does.** Checks that each PEM anchor is issued by itself and that its signature
    verifies with its own public key.

    **Why is this bad.** Anchoring trust at an intermediate ties the mesh to a certificate
    whose lifetime and revocation are decided by someone else, and `meshd` rotates roots,
    not intermediates, through Git.

    **Example.** An anchor whose PEM is the mesh intermediate (`ca-cert.pem`).

    **Use instead.** Anchor the self-signed root (`root-cert.pem`).
    """
    for mesh, index, name, certificates in _pem_anchors(ctx):
        from cryptography.exceptions import InvalidSignature  # only when there is a PEM

        cert = certificates[0]
        try:
            cert.verify_directly_issued_by(cert)
        except (InvalidSignature, ValueError, TypeError):
            yield Finding(
                mesh.span("ca", "anchors", index, "pem"),
                f"anchor {name!r}: certificate is not self-signed (issuer "
                f"{cert.issuer.rfc4514_string()!r}), so it is not a root",
                "anchor the self-signed root certificate instead",
            )


@rule("MC425", "ca-duplicate-anchor", Severity.ERROR)
def duplicate_anchor(ctx: LintContext) -> Iterable[Finding]:
    """Two anchors name the same root certificate.

    **What it does.** Compares the SHA-256 fingerprints of all anchors, computing them for
    `pem:` anchors, whatever case or colon style the fingerprints are written in.

    **Why is this bad.** During a rotation the anchor list is the trust bundle: removing the
    "old" entry of a duplicated pair removes the root that is still in use, and the issuer
    name becomes ambiguous.

    **Example.**
    ```yaml
    anchors:
    - {name: root-a, fingerprint: "sha256:AB:CD:..."}
    - {name: root-b, fingerprint: "sha256:abcd..."}
    ```

    **Use instead.** One anchor per root.
    """
    found = _ca(ctx)
    if found is None:
        return
    mesh, ca = found
    seen: dict[str, str] = {}
    for index, (name, fp) in enumerate(anchor_fingerprints(ca).items()):
        if fp is None:
            continue
        if fp in seen:
            yield Finding(
                mesh.span("ca", "anchors", index),
                f"anchor {name!r} is the same root as anchor {seen[fp]!r} ({fp})",
                "keep one anchor per root certificate",
            )
        else:
            seen[fp] = name


@rule("MC426", "ca-duplicate-anchor-name", Severity.ERROR)
def duplicate_anchor_name(ctx: LintContext) -> Iterable[Finding]:
    """Two anchors share one name.

    **What it does.** Reports an anchor whose `name` an earlier anchor already uses.

    **Why is this bad.** `issuer` refers to anchors by name; with two anchors of that name
    it is unclear which root issues workload certificates.

    **Example.** `anchors: [{name: root, fingerprint: ...}, {name: root, fingerprint: ...}]`

    **Use instead.** Give every anchor its own name (e.g. with the year: `root-2026`).
    """
    found = _ca(ctx)
    if found is None:
        return
    mesh, ca = found
    seen: set[str] = set()
    for index, anchor in enumerate(ca.anchors):
        if anchor.name in seen:
            yield Finding(
                mesh.span("ca", "anchors", index, "name"),
                f"anchor name {anchor.name!r} is used twice",
                "give every anchor its own name",
            )
        seen.add(anchor.name)


@rule("MC427", "ca-anchor-expired", Severity.ERROR)
def anchor_expired(ctx: LintContext) -> Iterable[Finding]:
    """An anchor's certificate has expired or is not valid yet.

    **What it does.** Compares each PEM anchor's validity period with the evaluation time.

    **Why is this bad.** Verifiers reject every chain through an expired (or not yet valid)
    root: if it is the issuer's root, all workload certificates stop verifying.

    **Example.** An anchor whose `notAfter` is in the past.

    **Use instead.** Rotate to a new root (`meshd ca rotate start`) before the old one expires,
    then remove the expired anchor.
    """
    for mesh, index, name, certificates in _pem_anchors(ctx):
        cert = certificates[0]
        if cert.not_valid_after_utc <= ctx.now:
            yield Finding(
                mesh.span("ca", "anchors", index, "pem"),
                f"anchor {name!r}: root expired at {cert.not_valid_after_utc.isoformat()}",
                "rotate to a new root (`meshd ca rotate start`) and remove this anchor",
            )
        elif cert.not_valid_before_utc > ctx.now:
            yield Finding(
                mesh.span("ca", "anchors", index, "pem"),
                f"anchor {name!r}: root is not valid before "
                f"{cert.not_valid_before_utc.isoformat()}",
                "check the clock of the machine that made it, or wait until then",
            )


@rule("MC428", "ca-anchor-expiring", Severity.WARNING)
def anchor_expiring(ctx: LintContext) -> Iterable[Finding]:
    """An anchor's certificate expires within 90 days.

    **What it does.** Warns when a PEM anchor's `notAfter` is less than 90 days away.

    **Why is this bad.** A zero-downtime root rotation takes at least the trust propagation
    time plus the longest leaf lifetime; started late, it cannot finish before the expiry.

    **Example.** An anchor that expires next month.

    **Use instead.** Start a rotation now (`meshd ca rotate start`).
    """
    for mesh, index, name, certificates in _pem_anchors(ctx):
        after = certificates[0].not_valid_after_utc
        if ctx.now < after <= ctx.now + EXPIRY_WARNING:
            days = (after - ctx.now).days
            yield Finding(
                mesh.span("ca", "anchors", index, "pem"),
                f"anchor {name!r}: root expires in {days} days ({after.isoformat()})",
                "start a root rotation now (`meshd ca rotate start`)",
            )


@rule("MC429", "ca-validity-order", Severity.ERROR)
def validity_order(ctx: LintContext) -> Iterable[Finding]:
    """The CA lifetimes do not nest: workload < renewBefore < intermediate ≤ root.

    **What it does.** Checks `workloadTTL < intermediateTTL ≤ rootTTL`, and that
    `renewBefore` is longer than `workloadTTL` and shorter than `intermediateTTL`.

    **Why is this bad.** A certificate cannot outlive its issuer: a leaf issued just before
    the intermediate renews would stop verifying when the intermediate expires, and a
    `renewBefore` at least as long as the intermediate's life renews it on every run.

    **Example.** `{intermediateTTL: 24h, workloadTTL: 48h}`

    **Use instead.** `{rootTTL: 87600h, intermediateTTL: 8760h, renewBefore: 720h,
    workloadTTL: 24h}` (the defaults).
    """
    found = _ca(ctx)
    if found is None:
        return
    mesh, ca = found
    root, inter = duration_ms(ca.root_ttl), duration_ms(ca.intermediate_ttl)
    leaf, renew = duration_ms(ca.workload_ttl), duration_ms(ca.renew_before)
    if inter > root:
        yield Finding(
            mesh.span("ca", "intermediateTTL"),
            f"intermediateTTL {ca.intermediate_ttl} is longer than rootTTL {ca.root_ttl}",
            "shorten intermediateTTL or lengthen rootTTL",
        )
    if leaf >= inter:
        yield Finding(
            mesh.span("ca", "workloadTTL"),
            f"workloadTTL {ca.workload_ttl} is not shorter than intermediateTTL "
            f"{ca.intermediate_ttl}",
            "workload certificates must be short-lived: shorten workloadTTL",
        )
    if renew <= leaf:
        yield Finding(
            mesh.span("ca", "renewBefore"),
            f"renewBefore {ca.renew_before} is not longer than workloadTTL {ca.workload_ttl}: "
            "leaves issued just before renewal would outlive their intermediate",
            "make renewBefore longer than workloadTTL",
        )
    elif renew >= inter:
        yield Finding(
            mesh.span("ca", "renewBefore"),
            f"renewBefore {ca.renew_before} is not shorter than intermediateTTL "
            f"{ca.intermediate_ttl}: the intermediate would renew on every run",
            "make renewBefore shorter than intermediateTTL",
        )
