"""Revert safety for trust changes: does a Mesh still trust every root live leaves need?

The reconciler writes a keyless *ca-status* snapshot (`meshd ca status --format json`; its
format is defined once, in `ca_status_format`). `meshc plan --ca-status FILE` calls
`check_ca_status` for the head revision and refuses the change when it returns problems.
Pure: the snapshot is the only view of the live world it gets.
"""

from __future__ import annotations

from typing import Any

from compiler.kinds.mesh.anchors import anchor_fingerprints
from compiler.kinds.mesh.ca_status_format import RootStatus, parse_ca_status
from compiler.kinds.mesh.model import MeshSpec


def check_ca_status(mesh_spec: MeshSpec, status: dict[str, Any]) -> list[str]:
    """Problems that would leave live leaves without a trusted issuer (empty = safe)."""
    roots, problems = parse_ca_status(status)
    if problems:
        return problems
    live = [root for root in roots if root.live_leaves > 0]
    ca = mesh_spec.ca
    if ca is None:
        return [
            f"Mesh.spec.ca: removed while {_leaves(root)} chain to root {root.fingerprint}; "
            "keep the CA settings (anchors and issuer) in the Mesh"
            for root in live
        ]
    trusted = anchor_fingerprints(ca)
    trusted_set = {fp for fp in trusted.values() if fp is not None}
    for root in live:
        if root.fingerprint not in trusted_set:
            until = root.max_leaf_not_after or "their expiry"
            problems.append(
                f"root {root.fingerprint}: {_leaves(root)} still chain to it but "
                "Mesh.spec.ca.anchors no longer trusts it, so those workloads would fail mTLS; "
                f"keep the anchor until {until} (or until every leaf is re-issued), "
                "then remove it"
            )
    if ca.issuer not in trusted:
        problems.append(
            f"Mesh.spec.ca.issuer: {ca.issuer!r} names no anchor in Mesh.spec.ca.anchors; "
            "new leaves would have no trusted issuer; name one of "
            + ", ".join(repr(name) for name in trusted)
        )
    else:
        issuer_fp = trusted[ca.issuer]
        known = {root.fingerprint for root in roots}
        if issuer_fp is not None and issuer_fp not in known:
            problems.append(
                f"Mesh.spec.ca.issuer: anchor {ca.issuer!r} ({issuer_fp}) is not a root the "
                "key store holds, so nothing could issue leaves under it; run "
                "`meshd ca rotate start` to prepare a new root and use the anchor it proposes"
            )
    return problems


def _leaves(root: RootStatus) -> str:
    count = root.live_leaves
    return f"{count} live leaf certificate" + ("" if count == 1 else "s")
