"""`check_ca_status`: the plan's refusal of trust edits that strand live leaves."""

from __future__ import annotations

import json
from typing import Any

from compiler.kinds.mesh.ca_status import check_ca_status
from compiler.kinds.mesh.ca_status_format import RootStatus, ca_status_json, parse_ca_status
from compiler.kinds.mesh.model import MeshSpec

FP1 = "sha256:" + ":".join(["11"] * 32)
FP2 = "sha256:" + ":".join(["2A"] * 32)


def spec(anchors: dict[str, str], issuer: str) -> MeshSpec:
    return MeshSpec.model_validate(
        {
            "ca": {
                "anchors": [{"name": n, "fingerprint": fp} for n, fp in anchors.items()],
                "issuer": issuer,
            }
        }
    )


def status(*roots: tuple[str, int, str | None]) -> dict[str, Any]:
    return {
        "version": 1,
        "roots": [
            {"fingerprint": fp, "liveLeaves": n, "maxLeafNotAfter": until} for fp, n, until in roots
        ],
    }


def test_keeping_every_needed_anchor_is_safe() -> None:
    snapshot = status((FP1, 3, "2026-11-26T12:00:00Z"), (FP2, 0, None))
    assert check_ca_status(spec({"old": FP1, "new": FP2}, "new"), snapshot) == []
    # a root without live leaves may go
    assert check_ca_status(spec({"old": FP1}, "old"), snapshot) == []


def test_dropping_an_anchor_live_leaves_need_is_refused_with_the_date() -> None:
    snapshot = status((FP1, 3, "2026-11-26T12:00:00Z"), (FP2, 1, "2026-11-26T13:00:00Z"))
    [problem] = check_ca_status(spec({"new": FP2}, "new"), snapshot)
    assert problem.startswith(f"root {FP1}: 3 live leaf certificates still chain to it")
    assert "keep the anchor until 2026-11-26T12:00:00Z" in problem


def test_fingerprint_spelling_does_not_matter() -> None:
    lower = "sha256:" + FP2.removeprefix("sha256:").replace(":", "").lower()
    snapshot = status((lower, 2, "2026-11-26T12:00:00Z"))
    assert check_ca_status(spec({"new": FP2}, "new"), snapshot) == []


def test_a_revert_that_removes_the_ca_section_is_refused() -> None:
    snapshot = status((FP1, 1, "2026-11-26T12:00:00Z"))
    [problem] = check_ca_status(MeshSpec(), snapshot)
    assert "Mesh.spec.ca: removed while 1 live leaf certificate chain to root" in problem


def test_issuer_must_be_trusted_and_held_by_the_store() -> None:
    snapshot = status((FP1, 0, None))
    [problem] = check_ca_status(spec({"old": FP1}, "ghost"), snapshot)
    assert "'ghost' names no anchor" in problem
    [problem] = check_ca_status(spec({"old": FP1, "new": FP2}, "new"), snapshot)
    assert f"anchor 'new' ({FP2}) is not a root the key store holds" in problem


def test_malformed_snapshots_are_problems_not_crashes() -> None:
    mesh = spec({"old": FP1}, "old")
    assert check_ca_status(mesh, []) == [  # type: ignore[arg-type]
        "ca-status: expected a JSON object with 'version' and 'roots'"
    ]
    assert "version 2 is not supported" in check_ca_status(mesh, {"version": 2, "roots": []})[0]
    assert check_ca_status(mesh, {"version": 1, "roots": {}}) == [
        "ca-status: 'roots' must be a list"
    ]
    bad = {
        "version": 1,
        "roots": [
            {"fingerprint": "md5:00", "liveLeaves": 1},
            {"fingerprint": FP1, "liveLeaves": -1},
            7,
        ],
    }
    assert check_ca_status(mesh, bad) == [
        "ca-status: roots[0].fingerprint: expected 'sha256:AA:BB:...'",
        "ca-status: roots[1].liveLeaves: expected a non-negative integer",
        "ca-status: roots[2]: expected an object",
    ]


def test_the_writer_and_the_reader_share_one_format() -> None:
    roots = [RootStatus(FP1, 2, "2026-11-26T12:00:00Z"), RootStatus(FP2, 0, None)]
    document = json.loads(json.dumps(ca_status_json(roots)))
    assert document == {
        "version": 1,
        "roots": [
            {"fingerprint": FP1, "liveLeaves": 2, "maxLeafNotAfter": "2026-11-26T12:00:00Z"},
            {"fingerprint": FP2, "liveLeaves": 0, "maxLeafNotAfter": None},
        ],
    }
    assert parse_ca_status(document) == (roots, [])


def test_an_expiry_that_is_not_a_time_is_a_shape_problem() -> None:
    bad = {"version": 1, "roots": [{"fingerprint": FP1, "liveLeaves": 1, "maxLeafNotAfter": 5}]}
    assert parse_ca_status(bad) == (
        [],
        ["ca-status: roots[0].maxLeafNotAfter: expected an RFC 3339 time or null"],
    )
    # absent means the same as null: the root has no live leaf to date
    assert parse_ca_status({"version": 1, "roots": [{"fingerprint": FP1, "liveLeaves": 0}]}) == (
        [RootStatus(FP1, 0, None)],
        [],
    )
