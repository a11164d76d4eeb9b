"""Plan: compile two revisions and compare them.

`Planner` keeps what makes a re-plan after a one-file change cheap: blob bytes by blob id
(`BlobCache`), one compiler `Session` for both sides (per-file results by content, the
engine's memo tables) and whole compiled sides by their content digest.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from compiler.api import Compilation, Session, compile_tree
from compiler.artifacts import Artifacts
from compiler.diagnostics import Diagnostic, Severity
from compiler.gcpause import collect_young, keep_out_of_collections, paused_gc
from compiler.load.discover import PolicyTree
from compiler.plan.ca import ca_refusals
from compiler.plan.meaning import Meaning, MeaningDiff, diff_meaning, summarise
from compiler.plan.resources import DiffCache, ResourceChange, diff_artifacts
from compiler.plan.risk import RiskFlag, risk_flags
from compiler.plan.source import BlobCache, CommitTree, Revision

_SIDE_CACHE_SIZE = 8
_DIGEST_CACHE_SIZE = 200_000


@dataclass(frozen=True, slots=True)
class Side:
    """One compiled revision: its model, its lowered objects and its meaning."""

    revision: Revision
    compilation: Compilation
    artifacts: Artifacts | None
    lowering_note: str | None
    meaning: Meaning | None

    @property
    def compiles(self) -> bool:
        return self.compilation.ok

    @property
    def findings(self) -> list[Diagnostic]:
        """Unsuppressed findings at warning or above (what a broken side shows)."""
        return self.compilation.blocking(Severity.WARNING)


@dataclass(frozen=True, slots=True)
class Plan:
    base: Side
    head: Side
    resources: tuple[ResourceChange, ...] | None
    """None when head does not compile or cannot be lowered."""
    meaning: MeaningDiff | None
    """None when head does not compile."""
    risks: tuple[RiskFlag, ...]
    refusals: tuple[str, ...]
    notes: tuple[str, ...]
    now: datetime

    @property
    def changed(self) -> bool:
        return bool(self.resources) or (self.meaning is not None and not self.meaning.empty)

    @property
    def failed(self) -> bool:
        """Head must not be applied: it does not compile, or --ca-status refused it."""
        return not self.head.compiles or bool(self.refusals)


@dataclass(slots=True)
class Planner:
    """Compiles sides with shared caches; one per process (or per watch session)."""

    session: Session = field(default_factory=Session)
    blobs: BlobCache = field(default_factory=BlobCache)
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per phase of the last compiled side (compile, lower, meaning, gc): figures
    for the benchmark; never part of any output."""
    sides: OrderedDict[str, tuple[Compilation, Artifacts | None, str | None, Meaning | None]] = (
        field(default_factory=OrderedDict)
    )
    contents: ContentDigests = field(default_factory=lambda: ContentDigests())
    diffs: DiffCache = field(default_factory=DiffCache)
    """Resource diffs by object identity: pass to `build_plan` so a re-plan diffs only
    the object pairs no earlier plan compared."""

    def compile_side(
        self,
        revision: Revision,
        tree: PolicyTree,
        *,
        now: datetime,
        rollout_state: Mapping[str, int],
    ) -> Side:
        key = side_digest(tree, now=now, rollout_state=rollout_state, contents=self.contents)
        hit = self.sides.get(key)
        if hit is None:
            started = time.perf_counter()
            with paused_gc():  # the model is ~10^6 acyclic objects: collections find nothing
                compilation = compile_tree(
                    tree, now=now, rollout_state=rollout_state, session=self.session
                )
                compiled = time.perf_counter()
                artifacts, note = lower_side(compilation) if compilation.ok else (None, None)
                lowered = time.perf_counter()
                meaning = summarise(compilation) if compilation.ok else None
                summarised = time.perf_counter()
            stats = self.session.engine.stats
            if stats.executed > stats.reused:  # mostly built afresh: long-lived from here
                keep_out_of_collections()
            collect_young()
            self.timings = {
                "compile": compiled - started,
                "lower": lowered - compiled,
                "meaning": summarised - lowered,
                "gc": time.perf_counter() - summarised,
            }
            hit = (compilation, artifacts, note, meaning)
            self.sides[key] = hit
            while len(self.sides) > _SIDE_CACHE_SIZE:
                self.sides.popitem(last=False)
        else:
            self.sides.move_to_end(key)
        return Side(revision, *hit)


@dataclass(slots=True)
class ContentDigests:
    """sha256 of file contents, memoised by the bytes object: a `BlobCache` hands out the
    same object for the same blob, so a re-plan hashes only the files that changed."""

    entries: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)

    def of(self, raw: bytes) -> bytes:
        hit = self.entries.get(id(raw))
        if hit is None or hit[0] is not raw:
            if len(self.entries) > _DIGEST_CACHE_SIZE:
                self.entries.clear()
            hit = (raw, hashlib.sha256(raw).digest())  # keeps raw alive: its id stays unique
            self.entries[id(raw)] = hit
        return hit[1]


def side_digest(
    tree: PolicyTree,
    *,
    now: datetime,
    rollout_state: Mapping[str, int],
    contents: ContentDigests | None = None,
) -> str:
    """Everything a compiled side depends on, hashed.

    A tree read from Git and not edited since is a function of its policy root's tree
    id (config and excludes included), so the id stands for its ~1,000 files; any other
    tree (the worktree, a test's dictionary) is hashed by content.
    """
    digest = hashlib.sha256()
    digest.update(now.isoformat().encode())
    for name, step in sorted(rollout_state.items()):
        digest.update(f"\0state\0{name}\0{step}".encode())
    if isinstance(tree, CommitTree) and tree.pristine():
        digest.update(f"\0git-tree\0{tree.root_id}".encode())
        return digest.hexdigest()
    sha256 = contents.of if contents is not None else _sha256
    digest.update(b"\0config\0" + (tree.config if tree.config is not None else b"\xff"))
    for problem in tree.problems:
        digest.update(f"\0problem\0{problem}".encode())
    for path, raw in sorted(tree.files.items()):
        digest.update(f"\0file\0{path}\0{len(raw)}\0".encode())
        digest.update(sha256(raw))
    return digest.hexdigest()


def _sha256(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def lower_side(compilation: Compilation) -> tuple[Artifacts | None, str | None]:
    """Istio objects for a compiling side; a note instead when lowering is unavailable."""
    try:
        from compiler.lower import LoweringRefused, lower
    except ImportError:
        return None, "the Istio lowering is not available in this build; resources are not compared"
    try:
        artifacts: Artifacts = lower(compilation, target="istio")
    except LoweringRefused as exc:
        return None, f"lowering refused: {exc}"
    return artifacts, None


def build_plan(
    base: Side,
    head: Side,
    *,
    now: datetime,
    ca_status: Any | None = None,
    notes: list[str] | None = None,
    diffs: DiffCache | None = None,
) -> Plan:
    """Compare two compiled sides. A base that does not compile counts as empty.

    `diffs`: the planner's `DiffCache` (`Planner.diffs`), so a re-plan diffs only new
    object pairs; without it every differing object is diffed afresh (same result)."""
    notes = list(notes or [])
    if not base.compiles:
        notes.append(
            f"base ({base.revision.label}) does not compile: everything head holds is shown as new"
        )
    if not head.compiles:
        notes.append(
            f"head ({head.revision.label}) does not compile: nothing can be planned or applied"
        )
        return Plan(base, head, None, None, (), (), tuple(notes), now)
    head_meaning = head.meaning if head.meaning is not None else Meaning()
    base_meaning = base.meaning if base.compiles and base.meaning is not None else Meaning()
    resources: tuple[ResourceChange, ...] | None = None
    with paused_gc():
        meaning = diff_meaning(base_meaning, head_meaning)
        if head.artifacts is not None and (base.artifacts is not None or not base.compiles):
            resources = tuple(diff_artifacts(base.artifacts or Artifacts(), head.artifacts, diffs))
    for side in (base, head):
        if side.lowering_note and side.lowering_note not in notes:
            notes.append(side.lowering_note)
    refusals: tuple[str, ...] = ()
    if ca_status is not None:
        refusals = tuple(ca_refusals(head.compilation.model.settings, ca_status))
    return Plan(
        base, head, resources, meaning, tuple(risk_flags(meaning)), refusals, tuple(notes), now
    )
