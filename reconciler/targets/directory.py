"""The directory target: the rendered-manifests pattern, for users who run Argo CD or Flux.

The folder holds exactly what `meshc render --out DIR` writes — one file per object, the
same paths and bytes (the same layout functions write both) — and nothing else: the
inventory of what was written lives in the reconciler's state, never in the folder.
Against that inventory an apply tells changes from drift: a file whose bytes differ from
what was last written while the desired bytes did not change was edited by hand, and is
corrected and counted. Only files the inventory lists are ever pruned; a file at a path
meshc would write that meshc did not write is a conflict, reported and left alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from compiler.api import Compilation
from compiler.artifacts import Artifacts
from compiler.cli.render import managed_by_meshc, object_bytes, object_path
from compiler.lower import LoweringRefused, lower
from reconciler.errors import MeshdError
from reconciler.faults import checkpoint
from reconciler.loop import Acceptance, Pushed

SCRATCH_SUFFIX = ".meshd-tmp"

Inventory = Mapping[str, str]
"""Path relative to the folder → sha256 of the bytes last written there."""


@dataclass(frozen=True, slots=True)
class DirectoryApply:
    """What one apply did, path by path (relative to the folder)."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    drift_corrected: tuple[str, ...] = ()
    pruned: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    """Paths held by files meshc did not write: left alone, the object not applied."""
    failed: tuple[tuple[str, str], ...] = ()
    """(path, why) for files that could not be written or removed."""
    unchanged: int = 0
    inventory: Mapping[str, str] = field(default_factory=dict)
    """What the folder holds for meshc after this apply (the next apply's `previous`)."""

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.drift_corrected or self.pruned)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DirectoryTarget:
    """Writes the artifacts under `out` in `fmt` (yaml or json), as `meshc render` does.

    As the loop's target it keeps the inventory of the last apply (seeded from the
    reconciler's state, so a restart prunes what the previous process wrote)."""

    def __init__(
        self,
        out: Path,
        *,
        fmt: str = "yaml",
        inventory: Inventory | None = None,
        prune: bool = True,
    ) -> None:
        self.out = out
        self.fmt = fmt
        self.inventory: dict[str, str] = dict(inventory or {})
        self.prune = prune
        self._generation = 0
        self._last: DirectoryApply | None = None
        self._writes = 0
        """Files this process wrote (numbers the crash points of the resume tests)."""

    def __repr__(self) -> str:
        return f"DirectoryTarget({str(self.out)!r})"

    @property
    def name(self) -> str:
        return f"directory {self.out}"

    def render(self, compilation: Compilation) -> Artifacts:
        try:
            return lower(compilation)
        except LoweringRefused as exc:
            raise MeshdError(str(exc)) from None

    async def push(self, desired: Artifacts, *, revision: str) -> Pushed:
        try:
            result = self.apply(desired, previous=self.inventory, prune=self.prune)
        except OSError as exc:
            raise MeshdError(
                f"{self.out}: cannot write the rendered objects ({exc.strerror}); "
                "check the directory's permissions and free space"
            ) from None
        self.inventory = dict(result.inventory)
        self._generation += 1
        self._last = result
        changed = len(result.created) + len(result.updated) + len(result.pruned)
        return Pushed(
            generation=self._generation,
            changed=changed,
            drift_corrected=len(result.drift_corrected),
            pruned=len(result.pruned),
            inventory=self.inventory,
        )

    async def confirm(self, pushed: Pushed, *, timeout: float) -> Acceptance:
        """Written is accepted; a conflict or a failed write is that file's rejection."""
        result = self._last
        if result is None:
            return Acceptance()
        rejected = {path: "a file meshc did not write holds this path" for path in result.conflicts}
        rejected.update(dict(result.failed))
        return Acceptance(accepted=(self.name,), rejected=rejected)

    def desired(self, artifacts: Artifacts) -> dict[str, bytes]:
        return {
            object_path(key, fmt=self.fmt): object_bytes(obj, fmt=self.fmt)
            for key, obj in artifacts
        }

    def apply(self, artifacts: Artifacts, *, previous: Inventory, prune: bool) -> DirectoryApply:
        """Make the folder hold `artifacts`; `previous` is the last apply's inventory."""
        wanted = self.desired(artifacts)
        self._sweep_scratch()
        created: list[str] = []
        updated: list[str] = []
        drift: list[str] = []
        conflicts: list[str] = []
        failed: list[tuple[str, str]] = []
        inventory: dict[str, str] = {}
        unchanged = 0
        for relative, data in sorted(wanted.items()):
            want = digest(data)
            current = self._read(relative)
            if current is not None and digest(current) == want:
                inventory[relative] = want
                unchanged += 1
                continue
            known = previous.get(relative)
            if (
                current is not None
                and known is None
                and not managed_by_meshc(current.decode("utf-8", errors="replace"))
            ):
                conflicts.append(relative)
                continue
            try:
                self._write(relative, data)
            except OSError as exc:
                failed.append((relative, exc.strerror or str(exc)))
                if known is not None:
                    inventory[relative] = known
                continue
            inventory[relative] = want
            if current is None and known is None:
                created.append(relative)
            elif known == want:
                drift.append(relative)  # we wrote these bytes before; someone changed them
            else:
                updated.append(relative)
        pruned = self._prune(previous, wanted, inventory, failed) if prune else []
        if not prune:
            inventory.update({p: d for p, d in previous.items() if p not in wanted})
        return DirectoryApply(
            created=tuple(created),
            updated=tuple(updated),
            drift_corrected=tuple(drift),
            pruned=tuple(pruned),
            conflicts=tuple(conflicts),
            failed=tuple(failed),
            unchanged=unchanged,
            inventory=inventory,
        )

    def _prune(
        self,
        previous: Inventory,
        wanted: Mapping[str, bytes],
        inventory: dict[str, str],
        failed: list[tuple[str, str]],
    ) -> list[str]:
        pruned = []
        for relative in sorted(set(previous) - set(wanted)):
            path = self.out / relative
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                failed.append((relative, exc.strerror or str(exc)))
                inventory[relative] = previous[relative]
                continue
            pruned.append(relative)
            _remove_empty_parents(path.parent, self.out)
        return pruned

    def _sweep_scratch(self) -> None:
        """Remove temporary files a killed apply left behind (the folder holds objects only)."""
        if self.out.is_dir():
            for stale in self.out.rglob(f"*{SCRATCH_SUFFIX}"):
                stale.unlink(missing_ok=True)

    def _read(self, relative: str) -> bytes | None:
        try:
            return (self.out / relative).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def _write(self, relative: str, data: bytes) -> None:
        """Write through a temporary file and rename, so a reader (or a kill -9) never
        sees half a file; the temporary name is dotted, which no render path is."""
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}{SCRATCH_SUFFIX}")
        scratch.write_bytes(data)
        self._writes += 1
        checkpoint(f"directory-write-{self._writes}")
        os.replace(scratch, path)


def _remove_empty_parents(directory: Path, top: Path) -> None:
    while directory != top and directory.is_relative_to(top):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
