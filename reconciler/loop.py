"""The reconcile loop: read a revision, compile it, and make a target serve it.

One pass reads top to bottom as named phases (Flux's `reconcile()`): read the source →
compile → refuse a revision with error findings (the target keeps serving the last good
one; nothing of a broken revision is pushed) → render the target's form → push → wait
until the target accepted or rejected it → record status. Sources (a folder today, Git
next) and targets (the xds control plane today; directory and Kubernetes next) plug in
through the `Source` and `Target` protocols, so every mode of `meshd` runs this one loop.
Each phase failure is classified in one place (`_fail`), and status is finalised once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from compiler.api import Compilation, Session, compile_tree
from compiler.diagnostics import Diagnostic, Severity
from compiler.load.discover import PolicyTree
from reconciler.backoff import backoff_delay
from reconciler.errors import MeshdError
from reconciler.rollouts import StepState, carry_steps
from reconciler.state import HistoryEntry, ReconcilerState, StateError, StateStore

CONFIRM_TIMEOUT = 10.0
"""How long a pass waits for the target to accept or reject what was pushed."""


@dataclass(frozen=True, slots=True)
class Revision:
    """One version of the policy tree, as a source read it."""

    id: str
    tree: PolicyTree


class Source(Protocol):
    """Where revisions come from (a folder, a Git repository)."""

    @property
    def name(self) -> str: ...

    def read(self) -> Revision:
        """The current revision; raises `MeshdError` when it cannot be read."""

    async def wait_for_change(self) -> None:
        """Return when a new pass is due (a change, an interval, a webhook)."""


@dataclass(frozen=True, slots=True)
class Pushed:
    """What a push handed the target: a generation to wait for, and how much changed."""

    generation: int
    changed: int
    drift_corrected: int = 0
    """Parts the target held differently from what was last applied (edited by hand)."""
    pruned: int = 0
    inventory: Mapping[str, str] | None = None
    """What the target holds for meshc now (part → digest), for the next pass's prune;
    None for a target that keeps no inventory."""


@dataclass(frozen=True, slots=True)
class Acceptance:
    """How the target took a push. `rejected` maps a part (a proxy, an object) to the
    target's own message; a rejected part keeps what it had before."""

    accepted: tuple[str, ...] = ()
    rejected: Mapping[str, str] = field(default_factory=dict)
    pending: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.rejected and not self.pending


class Target(Protocol):
    """Where a compiled revision goes (the xds control plane, a folder, a cluster)."""

    @property
    def name(self) -> str: ...

    def render(self, compilation: Compilation) -> Any:
        """The target's desired state for a compilation without errors (pure lowering);
        raises `MeshdError` when this target cannot express it."""

    async def push(self, desired: Any, *, revision: str) -> Pushed:
        """Make the target serve `desired`."""

    async def confirm(self, pushed: Pushed, *, timeout: float) -> Acceptance:
        """Wait until every part accepted or rejected `pushed`, or `timeout`."""


@dataclass(frozen=True, slots=True)
class PassOutcome:
    """What one pass did, for the caller to print."""

    revision: str | None
    applied: bool
    reason: str
    """Applied | Unchanged | CompileFailed | RenderFailed | SourceFailed | PushFailed |
    Rejected | NotConfirmed."""
    findings: tuple[str, ...] = ()
    rejected: Mapping[str, str] = field(default_factory=dict)
    pending: tuple[str, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    """What the pass decided on its own (a Rollout restarted, its state dropped)."""

    @property
    def ok(self) -> bool:
        return self.applied and not self.rejected and not self.pending


class PassFailed(Exception):
    """A phase failed; carries the outcome that `_fail` records."""

    def __init__(self, outcome: PassOutcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


def finding_line(diagnostic: Diagnostic) -> str:
    span = diagnostic.span
    return (
        f"{span.file}:{span.line}:{span.col}: {diagnostic.severity.name.lower()} "
        f"{diagnostic.code} {diagnostic.message}"
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    """Runs passes of one source into one target and keeps their status."""

    def __init__(
        self,
        source: Source,
        target: Target,
        *,
        rollout_state: Mapping[str, int] | None = None,
        read_steps: Callable[[], Mapping[str, int]] | None = None,
        store: StateStore | None = None,
        clock: Callable[[], datetime] = utc_now,
        confirm_timeout: float = CONFIRM_TIMEOUT,
        fail_on: Severity = Severity.ERROR,
        session: Session | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.read_steps = read_steps
        self.store = store
        self.clock = clock
        self.confirm_timeout = confirm_timeout
        self.fail_on = fail_on
        self.session = session or Session()
        self.state = store.load() if store is not None else ReconcilerState()
        self.state.source, self.state.target = source.name, target.name
        if rollout_state is not None and not self.state.rollout_steps:
            self.state.rollout_steps = dict(rollout_state)
        self.last_good: Compilation | None = None
        self._steps: StepState | None = None

    def __repr__(self) -> str:
        return f"Reconciler({self.source!r} -> {self.target!r})"

    @property
    def rollout_state(self) -> dict[str, int]:
        """The steps the last applied revision was compiled with."""
        return self.state.rollout_steps

    async def reconcile(self) -> PassOutcome:
        """One pass, its state saved (when a store is given) whatever happened. A state
        that cannot be saved (a full disk) is reported on the outcome; the next pass saves
        again, and the target already holds what the pass applied."""
        outcome = await self._reconcile()
        self._mark_reconciling(False, outcome.reason)
        if self.store is not None:
            try:
                self.store.save(self.state)
            except StateError as exc:
                outcome = dataclasses.replace(outcome, notes=(*outcome.notes, exc.message))
        return outcome

    async def _reconcile(self) -> PassOutcome:
        """One pass. Never raises for a bad revision or a target failure: the outcome
        says what happened, and the target still serves the last good revision."""
        started = time.monotonic()
        self.state.last_attempt_at = self._timestamp()
        self._mark_reconciling(True, "a pass is running")
        try:
            # Read the source: the revision to build.
            revision = self._read_source()
            self.state.last_attempted_revision = revision.id
            # Compile it, with the rollout steps the reconciler holds.
            compilation = self._compile(revision)
            # Guard: a revision with blocking findings is never pushed.
            self._refuse_if_broken(revision, compilation)
            # Render the target's desired state (pure lowering).
            desired = self._render(revision, compilation)
            # Push it to the target.
            pushed = await self._push(revision, desired)
            # Wait until the target accepted or rejected it.
            acceptance = await self.target.confirm(pushed, timeout=self.confirm_timeout)
        except PassFailed as failed:
            return self._fail(failed.outcome, started)
        # Record status once.
        self.last_good = compilation
        return self._record(revision, pushed, acceptance, started)

    def _read_source(self) -> Revision:
        try:
            return self.source.read()
        except MeshdError as exc:
            raise PassFailed(PassOutcome(None, False, "SourceFailed", (exc.message,))) from None

    def _compile(self, revision: Revision) -> Compilation:
        """Compile with the Rollouts' steps carried over from the last applied revision
        (or read from the steps file): a Rollout that is gone loses its step, one whose
        steps changed starts again at 0 — then compile again if that changed anything."""
        wanted = dict(self.read_steps()) if self.read_steps else dict(self.state.rollout_steps)
        compilation = self._compile_with(revision, wanted)
        self._steps = carry_steps(wanted, self.state.rollout_schedules, compilation)
        if self._steps.steps != wanted:
            compilation = self._compile_with(revision, self._steps.steps)
        return compilation

    def _compile_with(self, revision: Revision, steps: Mapping[str, int]) -> Compilation:
        return compile_tree(
            revision.tree, now=self.clock(), rollout_state=steps, session=self.session
        )

    def _refuse_if_broken(self, revision: Revision, compilation: Compilation) -> None:
        blocking = compilation.blocking(self.fail_on)
        if blocking:
            findings = tuple(finding_line(d) for d in blocking)
            raise PassFailed(PassOutcome(revision.id, False, "CompileFailed", findings))

    def _render(self, revision: Revision, compilation: Compilation) -> Any:
        try:
            return self.target.render(compilation)
        except MeshdError as exc:
            raise PassFailed(
                PassOutcome(revision.id, False, "RenderFailed", (exc.message,))
            ) from None

    async def _push(self, revision: Revision, desired: Any) -> Pushed:
        try:
            return await self.target.push(desired, revision=revision.id)
        except MeshdError as exc:
            # A target may refuse with located findings (the Kubernetes preflight's).
            findings = tuple(getattr(exc, "findings", ())) or (exc.message,)
            raise PassFailed(PassOutcome(revision.id, False, "PushFailed", findings)) from None

    def _fail(self, outcome: PassOutcome, started: float) -> PassOutcome:
        """The one place a failed pass is recorded: conditions, counters, backoff."""
        outcome = _timed(outcome, started)
        now = self._timestamp()
        self.state.failures += 1
        self.state.count("refused" if outcome.reason == "CompileFailed" else "failed")
        self.state.findings = list(outcome.findings)
        self.state.last_error = f"{outcome.reason}: {outcome.revision or 'no revision'}"
        kept = self.state.last_applied_revision or "nothing"
        # Ready is False until a revision applies again (Flux's reading); the target
        # still serves the last good one, which the message names.
        self.state.set_condition(
            "Ready",
            False,
            outcome.reason,
            f"serving {kept}; {outcome.revision or 'the source'} failed: {outcome.reason}",
            now,
        )
        self.state.set_condition("Stalled", True, outcome.reason, "; ".join(outcome.findings), now)
        return outcome

    def _record(
        self, revision: Revision, pushed: Pushed, acceptance: Acceptance, started: float
    ) -> PassOutcome:
        now = self._timestamp()
        if acceptance.rejected:
            reason = "Rejected"
        elif acceptance.pending:
            reason = "NotConfirmed"
        else:
            reason = "Applied" if pushed.changed else "Unchanged"
        outcome = _timed(
            PassOutcome(
                revision.id,
                True,
                reason,
                rejected=dict(acceptance.rejected),
                pending=acceptance.pending,
                notes=self._step_notes(),
            ),
            started,
        )
        self.state.last_applied_revision = revision.id
        if self._steps is not None:
            self.state.rollout_steps = dict(self._steps.steps)
            self.state.rollout_schedules = dict(self._steps.schedules)
        if pushed.inventory is not None:
            self.state.inventory = dict(pushed.inventory)
        self.state.count("drift_corrected", pushed.drift_corrected)
        self.state.count("pruned", pushed.pruned)
        self.state.findings = []
        self.state.last_error = None if outcome.ok else reason
        self.state.failures = 0 if outcome.ok else self.state.failures + 1
        self.state.count("applied")
        if pushed.changed:
            self.state.record_applied(
                HistoryEntry(revision.id, now, round(outcome.seconds, 4), pushed.changed)
            )
        detail = "; ".join(f"{part}: {message}" for part, message in acceptance.rejected.items())
        self.state.set_condition("Ready", outcome.ok, reason, detail or revision.id, now)
        self.state.set_condition("Stalled", False, reason, "", now)
        return outcome

    def _mark_reconciling(self, running: bool, message: str) -> None:
        """The Reconciling condition; saved at the start of a pass too, so `meshd status`
        shows a pass in progress (a long fetch, a slow target)."""
        now = self._timestamp()
        self.state.set_condition(
            "Reconciling", running, "Progressing" if running else "Done", message, now
        )
        if running and self.store is not None:
            with contextlib.suppress(StateError):
                self.store.save(self.state)

    def _step_notes(self) -> tuple[str, ...]:
        if self._steps is None:
            return ()
        restarted = tuple(
            f"Rollout {key}: its steps changed; restarted at step 0"
            for key in self._steps.restarted
        )
        dropped = tuple(
            f"Rollout {key}: gone from the revision; its step state dropped"
            for key in self._steps.dropped
        )
        return restarted + dropped

    def _timestamp(self) -> str:
        return self.clock().isoformat(timespec="seconds").replace("+00:00", "Z")

    async def run(
        self,
        *,
        stop: asyncio.Event,
        on_pass: Callable[[PassOutcome], None],
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        first: bool = True,
        suspended: Callable[[], bool] = lambda: False,
    ) -> None:
        """Pass, then wait for a change (or, after a failure that a retry may fix, a
        backoff), until `stop` is set. `first=False`: the caller ran the first pass;
        while `suspended()` holds, no pass runs (the target keeps what it serves)."""
        outcome: PassOutcome | None = None
        while not stop.is_set():
            if suspended():
                outcome = PassOutcome(self.state.last_applied_revision, True, "Suspended")
            elif first or outcome is not None:
                outcome = await self.reconcile()
                on_pass(outcome)
            else:
                outcome = PassOutcome(self.state.last_applied_revision, True, "Started")
            waits: list[asyncio.Future[Any]] = [
                asyncio.ensure_future(self.source.wait_for_change()),
                asyncio.ensure_future(stop.wait()),
            ]
            if outcome.reason in ("SourceFailed", "PushFailed", "NotConfirmed"):
                delay = backoff_delay(self.state.failures, base=backoff_base, cap=backoff_cap)
                waits.append(asyncio.ensure_future(asyncio.sleep(delay)))
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()


def _timed(outcome: PassOutcome, started: float) -> PassOutcome:
    return PassOutcome(
        outcome.revision,
        outcome.applied,
        outcome.reason,
        outcome.findings,
        outcome.rejected,
        outcome.pending,
        time.monotonic() - started,
        outcome.notes,
    )
