"""The reconciler's persisted state: what is applied, what was attempted, and why.

One JSON document per followed repository, in `--state DIR` (default
`$XDG_STATE_HOME/meshd/<repo-id>`, never inside a Git worktree), replaced atomically
(write, fsync, rename) after every phase that changes it, so a `kill -9` at any point
leaves either the old or the new state and the next pass resumes from it. It holds no
secret: revisions, conditions, the inventory (paths/keys and digests), the last ten
applied revisions with their durations, and the rollout steps.

The verbs a user runs beside a live loop (`meshd suspend|resume|reconcile`) never write
that document — the loop would overwrite it with its own copy after the next pass — but
drop marker files beside it, which the loop reads before each pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import MeshdError

STATE_FILE = "state.json"
SUSPENDED_MARK = "suspended"
REQUEST_MARK = "reconcile-requested"
HISTORY_LENGTH = 10
SCHEMA = 1


class StateError(MeshdError):
    code = 1


@dataclass(slots=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str
    since: str
    """When the condition last changed status (RFC 3339)."""


@dataclass(slots=True)
class HistoryEntry:
    revision: str
    applied_at: str
    duration_seconds: float
    changed: int


@dataclass(slots=True)
class ReconcilerState:
    source: str = ""
    target: str = ""
    last_applied_revision: str | None = None
    last_attempted_revision: str | None = None
    last_attempt_at: str | None = None
    last_error: str | None = None
    findings: list[str] = field(default_factory=list)
    """The blocking findings of the last refused revision (`file:line:col: code message`)."""
    conditions: list[Condition] = field(default_factory=list)
    inventory: dict[str, str] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    rollout_steps: dict[str, int] = field(default_factory=dict)
    rollout_schedules: dict[str, str] = field(default_factory=dict)
    """Fingerprints of each progressive Rollout's steps (a changed schedule restarts)."""
    counters: dict[str, int] = field(default_factory=dict)
    """applied, pruned, drift_corrected, refused, failed passes — monotonic."""
    failures: int = 0
    """Consecutive failed passes (drives the backoff)."""

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    def set_condition(self, kind: str, status: bool, reason: str, message: str, now: str) -> None:
        old = self.condition(kind)
        since = old.since if old is not None and old.status == status else now
        self.conditions = [c for c in self.conditions if c.type != kind]
        self.conditions.append(Condition(kind, status, reason, message, since))
        self.conditions.sort(key=lambda c: c.type)

    def record_applied(self, entry: HistoryEntry) -> None:
        self.history = [entry, *self.history][:HISTORY_LENGTH]

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by


def repo_id(source: str) -> str:
    """A directory name for a repository: readable tail plus a hash of the whole URL."""
    tail = source.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "repo"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in tail)[:40]
    return f"{safe}-{hashlib.sha256(source.encode()).hexdigest()[:12]}"


def default_state_dir(source: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "meshd" / repo_id(source)


def check_state_dir(directory: Path) -> None:
    """Refuse a state directory inside a Git worktree: state would end up committed."""
    probe = directory.resolve()
    for parent in (probe, *probe.parents):
        if (parent / ".git").exists():
            raise StateError(
                f"--state {directory}: inside the Git worktree {parent}; the reconciler's "
                "state must live outside any repository (default: $XDG_STATE_HOME/meshd/)"
            )


class StateStore:
    """Reads and atomically replaces the state document of one repository."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def path(self) -> Path:
        return self.directory / STATE_FILE

    def load(self) -> ReconcilerState:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ReconcilerState()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state ({exc.strerror})") from None
        try:
            return _from_json(json.loads(raw))
        except (ValueError, TypeError, KeyError) as exc:
            raise StateError(
                f"{self.path}: not a meshd state file ({exc}); move it away to start afresh"
            ) from None

    def save(self, state: ReconcilerState) -> None:
        """Replace the state document; a failure (a full disk) leaves the old one whole."""
        data = json.dumps({"schema": SCHEMA, **asdict(state)}, indent=2, sort_keys=True) + "\n"
        try:
            self._replace(data)
        except OSError as exc:
            raise StateError(
                f"{self.path}: cannot save the reconciler's state ({exc.strerror}); the "
                "previous state is kept; free space or fix permissions in --state"
            ) from None

    def _replace(self, data: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, scratch = tempfile.mkstemp(dir=self.directory, prefix=".state-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(scratch, self.path)
        except BaseException:
            Path(scratch).unlink(missing_ok=True)
            raise

    @property
    def suspended(self) -> bool:
        return (self.directory / SUSPENDED_MARK).exists()

    def suspend(self, suspended: bool) -> None:
        """`meshd suspend` / `meshd resume`: passes stop (the target keeps what it has)."""
        mark = self.directory / SUSPENDED_MARK
        if suspended:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            mark.touch()
        else:
            mark.unlink(missing_ok=True)

    def request_pass(self) -> None:
        """`meshd reconcile`: the running loop starts a pass at its next poll."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.directory / REQUEST_MARK).touch()

    def take_request(self) -> bool:
        """Whether a pass was requested since the last call (consumes the request)."""
        try:
            (self.directory / REQUEST_MARK).unlink()
        except FileNotFoundError:
            return False
        return True


def _from_json(data: dict[str, Any]) -> ReconcilerState:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"schema {data.get('schema')!r}, expected {SCHEMA}")
    fields = {k: v for k, v in data.items() if k != "schema"}
    fields["conditions"] = [Condition(**c) for c in fields.get("conditions", [])]
    fields["history"] = [HistoryEntry(**h) for h in fields.get("history", [])]
    return ReconcilerState(**fields)
