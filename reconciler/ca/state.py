"""The persisted CA state (`state.json`): which roots exist, which are trusted, who issues,
the rotation in progress, the bundle sequence and the leaves issued (public facts only).

`state.json` is the single commit point of every operation: new key and certificate files
are written first under names the state does not reference yet, then the state is replaced
atomically. A crash before the rename leaves unreferenced files that the retry overwrites;
a crash after it leaves the finished step. So no phase is lost or done twice.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compiler.kinds.common import Duration
from reconciler.ca.errors import CAError
from reconciler.ca.issue import KeyAlgorithm

STATE_VERSION = 1
STATE_FILE = "state.json"


class Phase(enum.StrEnum):
    TRUST_BOTH = "trust-both"
    ISSUE_FROM_NEW = "issue-from-new"
    TRUST_NEW_ONLY = "trust-new-only"


PHASE_ORDER = (Phase.TRUST_BOTH, Phase.ISSUE_FROM_NEW, Phase.TRUST_NEW_ONLY)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Settings(_Model):
    """Lifetimes; taken from `Mesh.spec.ca` when a Mesh file is given."""

    root_ttl: Duration = Field(default="87600h", alias="rootTTL")
    intermediate_ttl: Duration = Field(default="8760h", alias="intermediateTTL")
    workload_ttl: Duration = Field(default="24h", alias="workloadTTL")
    renew_before: Duration = Field(default="720h", alias="renewBefore")


class RootRecord(_Model):
    name: str
    fingerprint: str
    archived: bool = False
    intermediate: int = Field(default=1, ge=1, description="number of the current intermediate")


class Rotation(_Model):
    from_root: str = Field(alias="from")
    to_root: str = Field(alias="to")
    phase: Phase
    started_at: datetime = Field(alias="startedAt")
    phase_since: datetime = Field(alias="phaseSince")
    switched_at: datetime | None = Field(default=None, alias="switchedAt")
    forced: list[str] = Field(default_factory=list)


class LeafRecord(_Model):
    serial: str
    root: str
    spiffe_id: str = Field(alias="spiffeId")
    issued_at: datetime = Field(alias="issuedAt")
    not_after: datetime = Field(alias="notAfter")


class ConsumerKind(enum.StrEnum):
    """What validates peers with the bundle; each reports through `meshd ca ack` today."""

    XDS = "xds"
    KUBERNETES = "kubernetes"
    FILE = "file"


class ConsumerRecord(_Model):
    """A registered trust-bundle consumer: gate 1 waits for every one of them."""

    name: str
    kind: ConsumerKind
    registered_at: datetime = Field(alias="registeredAt")


class Event(_Model):
    at: datetime
    event: str


class State(_Model):
    version: int
    trust_domain: str = Field(alias="trustDomain")
    key_algorithm: KeyAlgorithm = Field(alias="keyAlgorithm")
    encrypted: bool = False
    external_leaves: bool = Field(
        default=False,
        alias="externalLeaves",
        description="leaves are issued outside this store (istiod): gate 2 waits workloadTTL",
    )
    settings: Settings = Field(default_factory=Settings)
    roots: list[RootRecord]
    trusted: list[str]
    issuer: str
    bundle_sequence: int = Field(alias="bundleSequence", ge=1)
    rotation: Rotation | None = None
    leaves: list[LeafRecord] = Field(default_factory=list)
    consumers: list[ConsumerRecord] = Field(default_factory=list)
    history: list[Event] = Field(default_factory=list)

    def root(self, name: str) -> RootRecord:
        for record in self.roots:
            if record.name == name:
                return record
        raise CAError(
            f"state names root {name!r} but lists no such root",
            path=STATE_FILE,
            remedy="the state file was edited by hand; restore it from backup",
        )

    def active_roots(self) -> list[RootRecord]:
        return [record for record in self.roots if not record.archived]

    def record(self, now: datetime, event: str) -> None:
        self.history.append(Event(at=now, event=event))

    def to_json(self) -> bytes:
        data = self.model_dump(mode="json", by_alias=True)
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def parse_state(raw: bytes, path: Path) -> State:
    """Parse `state.json`; a newer version or a malformed file is a located error."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CAError(
            f"not valid JSON ({exc})", path=path, remedy="restore the state directory from backup"
        ) from None
    if not isinstance(data, dict):
        raise CAError("expected a JSON object", path=path, remedy="restore it from backup")
    version = data.get("version")
    if isinstance(version, int) and version > STATE_VERSION:
        raise CAError(
            f"state version {version} was written by a newer meshd (this one reads up to "
            f"{STATE_VERSION})",
            path=path,
            remedy="upgrade meshd; do not edit the state by hand",
        )
    if version != STATE_VERSION:
        raise CAError(
            f"unsupported state version {version!r}",
            path=path,
            remedy=f"expected version {STATE_VERSION}",
        )
    try:
        state = State.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CAError(
            f"{where}: {first['msg']} ({exc.error_count()} problem(s))",
            path=path,
            remedy="restore the state directory from backup",
        ) from None
    _check_consistency(state, path)
    return state


def _check_consistency(state: State, path: Path) -> None:
    names = {record.name for record in state.roots}
    for name in [*state.trusted, state.issuer]:
        if name not in names:
            raise CAError(
                f"names root {name!r}, which the state does not list",
                path=path,
                remedy="restore the state directory from backup",
            )
    if state.issuer not in state.trusted:
        raise CAError(
            f"issuer {state.issuer!r} is not trusted",
            path=path,
            remedy="restore the state directory from backup",
        )
