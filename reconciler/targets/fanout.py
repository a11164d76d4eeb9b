"""Two targets fed by one loop: what lets every replica of `meshd run --target
kubernetes --serve-xds` serve xDS while only the Lease holder writes to Kubernetes.

Both render the same compilation and are pushed the same revision; the first (the
primary) keeps the reconciler's inventory. Their answers are merged: a part either one
rejects is rejected (named after its target), so Ready means both accepted.
"""

from __future__ import annotations

from typing import Any

from compiler.api import Compilation
from reconciler.loop import Acceptance, Pushed, Target


class FanOut:
    def __init__(self, primary: Target, secondary: Target) -> None:
        self.primary = primary
        self.secondary = secondary
        self._pushed: dict[int, tuple[Pushed, Pushed]] = {}
        self._generation = 0

    def __repr__(self) -> str:
        return f"FanOut({self.primary!r}, {self.secondary!r})"

    @property
    def name(self) -> str:
        return f"{self.primary.name} + {self.secondary.name}"

    def render(self, compilation: Compilation) -> tuple[Any, Any]:
        return self.primary.render(compilation), self.secondary.render(compilation)

    async def push(self, desired: tuple[Any, Any], *, revision: str) -> Pushed:
        first = await self.primary.push(desired[0], revision=revision)
        second = await self.secondary.push(desired[1], revision=revision)
        self._generation += 1
        self._pushed = {self._generation: (first, second)}
        return Pushed(
            generation=self._generation,
            changed=first.changed + second.changed,
            drift_corrected=first.drift_corrected,
            pruned=first.pruned,
            inventory=first.inventory,
        )

    async def confirm(self, pushed: Pushed, *, timeout: float) -> Acceptance:
        first, second = self._pushed[pushed.generation]
        answers = (
            (self.primary.name, await self.primary.confirm(first, timeout=timeout)),
            (self.secondary.name, await self.secondary.confirm(second, timeout=timeout)),
        )
        return Acceptance(
            accepted=tuple(part for _, answer in answers for part in answer.accepted),
            rejected={
                f"{name}: {part}": message
                for name, answer in answers
                for part, message in answer.rejected.items()
            },
            pending=tuple(f"{name}: {part}" for name, answer in answers for part in answer.pending),
        )
