"""Trust-bundle consumers: who must report the new root before leaves are issued from it.

A consumer is anything that validates peers with our bundle (an xDS proxy fleet, the
Kubernetes `istio-ca-root-cert` ConfigMaps). Consumers are registered in the state
(`meshd ca consumer add`) before a rotation starts, and gate 1 holds once every registered
consumer reports the new root: an acknowledgement alone cannot stand in for a consumer the
CA was never told about. The file-based acknowledgement is built now (tests and the
CLI: `meshd ca ack NAME`); the xDS and Kubernetes consumers come with those targets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from compiler.kinds.mesh.anchors import normalize_fingerprint
from reconciler.ca.errors import REFUSED, CAError
from reconciler.ca.fsutil import atomic_write, ensure_private_dir
from reconciler.ca.state import ConsumerKind, ConsumerRecord, State

CONSUMER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
FINGERPRINT = re.compile(r"^sha256:([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$")


class Consumer(Protocol):
    @property
    def name(self) -> str: ...

    def trusted_fingerprints(self) -> frozenset[str]:
        """The root fingerprints this consumer currently validates peers with."""
        ...


@dataclass(frozen=True, slots=True)
class FileConsumer:
    name: str
    fingerprints: frozenset[str]

    def trusted_fingerprints(self) -> frozenset[str]:
        return self.fingerprints


def read_file_consumers(directory: Path) -> list[Consumer]:
    """Every `<name>.json` in `directory` is one consumer: `{"roots": ["sha256:..."]}`."""
    if not directory.is_dir():
        return []
    consumers: list[Consumer] = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as exc:
            raise CAError(
                f"acknowledgement is not valid JSON ({exc})",
                path=path,
                remedy="rewrite it with `meshd ca ack NAME`",
            ) from None
        roots = data.get("roots") if isinstance(data, dict) else None
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            raise CAError(
                'acknowledgement needs "roots": a list of fingerprints',
                path=path,
                remedy="rewrite it with `meshd ca ack NAME`",
            )
        prints = frozenset(normalize_fingerprint(r) for r in roots)
        consumers.append(FileConsumer(path.stem, prints))
    return consumers


def check_consumer_name(name: str) -> None:
    """Consumer names become file names (`acks/<name>.json`): simple names only."""
    if not CONSUMER_NAME.match(name):
        raise CAError(
            f"consumer name {name!r} is not a simple name",
            remedy="use letters, digits, '.', '_' or '-'",
        )


def register_consumer(state: State, name: str, kind: ConsumerKind, now: datetime) -> None:
    """Add a consumer to the state (the caller saves); a second add is refused, not merged."""
    check_consumer_name(name)
    if any(record.name == name for record in state.consumers):
        raise CAError(
            f"consumer {name!r} is already registered",
            remedy="`meshd ca consumer list` shows it; remove it first to change its kind",
            code=REFUSED,
        )
    state.consumers.append(ConsumerRecord(name=name, kind=kind, registered_at=now))
    state.record(now, f"consumer {name} ({kind}) registered")


def unregister_consumer(state: State, name: str, now: datetime) -> None:
    """Remove a consumer (the caller saves): gate 1 stops waiting for it."""
    if not any(record.name == name for record in state.consumers):
        raise CAError(
            f"consumer {name!r} is not registered",
            remedy="`meshd ca consumer list` shows the registered ones",
            code=REFUSED,
        )
    state.consumers = [record for record in state.consumers if record.name != name]
    state.record(now, f"consumer {name} removed")


def write_file_ack(directory: Path, name: str, fingerprints: list[str]) -> Path:
    check_consumer_name(name)
    for text in fingerprints:
        if not FINGERPRINT.match(text):
            raise CAError(
                f"{text!r} is not a SHA-256 fingerprint",
                remedy="write sha256:AA:BB:... (`meshd ca status` lists them)",
            )
    ensure_private_dir(directory)
    path = directory / f"{name}.json"
    body = {"consumer": name, "roots": sorted(normalize_fingerprint(f) for f in fingerprints)}
    atomic_write(path, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())
    return path
