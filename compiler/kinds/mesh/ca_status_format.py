"""The ca-status snapshot: the one definition of its JSON, for its writer and its reader.

`meshd ca status --format json` writes it and `meshc plan --ca-status FILE` reads it:

    {"version": 1,
     "roots": [{"fingerprint": "sha256:AA:...", "liveLeaves": 3,
                "maxLeafNotAfter": "2026-11-26T12:00:00Z"}]}

`maxLeafNotAfter` is null (or absent) when a root has no live leaf. The snapshot is keyless
on purpose: fingerprints, counts and dates are all a plan needs, so the file can travel
through CI. The compiler owns the format because the reconciler may import the compiler but
never the reverse; both sides build and read it only through this module, so a field
renamed here is renamed for both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from compiler.kinds.mesh.anchors import normalize_fingerprint

CA_STATUS_VERSION: Final = 1
"""Bumped on any change a reader of the previous version would misread."""

VERSION: Final = "version"
ROOTS: Final = "roots"
FINGERPRINT: Final = "fingerprint"
LIVE_LEAVES: Final = "liveLeaves"
MAX_LEAF_NOT_AFTER: Final = "maxLeafNotAfter"

PRODUCER: Final = "`meshd ca status --format json`"
"""The command that writes the snapshot, named by messages that ask for a fresh one."""


@dataclass(frozen=True, slots=True)
class RootStatus:
    """One root the key store holds: how many live leaves chain to it and until when."""

    fingerprint: str
    live_leaves: int
    max_leaf_not_after: str | None
    """RFC 3339 expiry of the root's last live leaf; None when it has none."""

    def to_json(self) -> dict[str, object]:
        return {
            FINGERPRINT: self.fingerprint,
            LIVE_LEAVES: self.live_leaves,
            MAX_LEAF_NOT_AFTER: self.max_leaf_not_after,
        }


def ca_status_json(roots: Iterable[RootStatus]) -> dict[str, object]:
    """The snapshot document for `roots`, as the writer emits it."""
    return {VERSION: CA_STATUS_VERSION, ROOTS: [root.to_json() for root in roots]}


def parse_ca_status(status: object) -> tuple[list[RootStatus], list[str]]:
    """The snapshot's roots and the problems of its shape, each naming the offending member.

    A malformed root is skipped and reported rather than raised, so one call names every
    problem of a hand-edited file; fingerprints come back in canonical spelling so they
    compare with the Mesh's anchors however the file spelled them.
    """
    if not isinstance(status, dict):
        return [], [f"ca-status: expected a JSON object with '{VERSION}' and '{ROOTS}'"]
    version = status.get(VERSION)
    if version != CA_STATUS_VERSION:
        return [], [
            f"ca-status: version {version!r} is not supported (this meshc reads "
            f"{CA_STATUS_VERSION}); produce it with a matching {PRODUCER}"
        ]
    raw_roots = status.get(ROOTS)
    if not isinstance(raw_roots, list):
        return [], [f"ca-status: '{ROOTS}' must be a list"]
    roots: list[RootStatus] = []
    problems: list[str] = []
    for index, raw in enumerate(raw_roots):
        where = f"ca-status: {ROOTS}[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected an object")
            continue
        fp, count, until = raw.get(FINGERPRINT), raw.get(LIVE_LEAVES), raw.get(MAX_LEAF_NOT_AFTER)
        if not isinstance(fp, str) or not fp.lower().startswith("sha256:"):
            problems.append(f"{where}.{FINGERPRINT}: expected 'sha256:AA:BB:...'")
            continue
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            problems.append(f"{where}.{LIVE_LEAVES}: expected a non-negative integer")
            continue
        if until is not None and not isinstance(until, str):
            problems.append(f"{where}.{MAX_LEAF_NOT_AFTER}: expected an RFC 3339 time or null")
            continue
        roots.append(RootStatus(normalize_fingerprint(fp), count, until))
    return roots, problems
