"""Revert safety for trust changes: does a Mesh still trust every root live leaves need?

The reconciler writes a keyless *ca-status* snapshot (`meshd ca status --format json`):

    {"version": 1,
     "roots": [{"fingerprint": "sha256:AA:...", "liveLeaves": 3,
                "maxLeafNotAfter": "2026-11-26T12:00:00Z"}]}

`maxLeafNotAfter` is null when a root has no live leaf. `meshc plan --ca-status FILE`
calls `check_ca_status` for the head revision and refuses the change when it returns
problems. Pure: the snapshot is the only view of the live world it gets.
"""

from __future__ import annotations

from typing import Any

from compiler.kinds.mesh.anchors import anchor_fingerprints, normalize_fingerprint
from compiler.kinds.mesh.model import MeshSpec

CA_STATUS_VERSION = 1


def check_ca_status(mesh_spec: MeshSpec, status: dict[str, Any]) -> list[str]:
    """Problems that would leave live leaves without a trusted issuer (empty = safe)."""
    roots, problems = _parse_status(status)
    if problems:
        return problems
    live = [root for root in roots if root["liveLeaves"] > 0]
    ca = mesh_spec.ca
    if ca is None:
        return [
            f"Mesh.spec.ca: removed while {_leaves(root)} chain to root {root['fingerprint']}; "
            "keep the CA settings (anchors and issuer) in the Mesh"
            for root in live
        ]
    trusted = anchor_fingerprints(ca)
    trusted_set = {fp for fp in trusted.values() if fp is not None}
    for root in live:
        if root["fingerprint"] not in trusted_set:
            until = root.get("maxLeafNotAfter") or "their expiry"
            problems.append(
                f"root {root['fingerprint']}: {_leaves(root)} still chain to it but "
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
        known = {root["fingerprint"] for root in roots}
        if issuer_fp is not None and issuer_fp not in known:
            problems.append(
                f"Mesh.spec.ca.issuer: anchor {ca.issuer!r} ({issuer_fp}) is not a root the "
                "key store holds, so nothing could issue leaves under it; run "
                "`meshd ca rotate` to prepare a new root and use the anchor it proposes"
            )
    return problems


def _leaves(root: dict[str, Any]) -> str:
    count = root["liveLeaves"]
    return f"{count} live leaf certificate" + ("" if count == 1 else "s")


def _parse_status(status: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Validate the snapshot's shape; problems name the offending member."""
    if not isinstance(status, dict):
        return [], ["ca-status: expected a JSON object with 'version' and 'roots'"]
    version = status.get("version")
    if version != CA_STATUS_VERSION:
        return [], [
            f"ca-status: version {version!r} is not supported (this meshc reads "
            f"{CA_STATUS_VERSION}); produce it with a matching `meshd ca status --format json`"
        ]
    raw_roots = status.get("roots")
    if not isinstance(raw_roots, list):
        return [], ["ca-status: 'roots' must be a list"]
    roots: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, raw in enumerate(raw_roots):
        where = f"ca-status: roots[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected an object")
            continue
        fp, count = raw.get("fingerprint"), raw.get("liveLeaves")
        if not isinstance(fp, str) or not fp.lower().startswith("sha256:"):
            problems.append(f"{where}.fingerprint: expected 'sha256:AA:BB:...'")
            continue
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            problems.append(f"{where}.liveLeaves: expected a non-negative integer")
            continue
        roots.append({**raw, "fingerprint": normalize_fingerprint(fp)})
    return roots, problems
