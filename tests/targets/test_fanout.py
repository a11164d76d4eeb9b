"""One loop, two targets: both are pushed every revision and both must accept it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from compiler.api import Compilation
from reconciler.loop import Acceptance, Pushed
from reconciler.targets.fanout import FanOut


class Recording:
    def __init__(self, name: str, *, reject: Mapping[str, str] | None = None) -> None:
        self._name = name
        self.reject = dict(reject or {})
        self.pushed: list[tuple[Any, str]] = []

    @property
    def name(self) -> str:
        return self._name

    def render(self, compilation: Compilation) -> str:
        return f"{self._name} of {compilation}"

    async def push(self, desired: Any, *, revision: str) -> Pushed:
        self.pushed.append((desired, revision))
        return Pushed(
            generation=len(self.pushed), changed=2, pruned=1, inventory={self._name: revision}
        )

    async def confirm(self, pushed: Pushed, *, timeout: float) -> Acceptance:
        return Acceptance(accepted=(f"{self._name}-part",), rejected=self.reject)


def test_both_targets_get_each_revision_and_the_primary_keeps_the_inventory() -> None:
    kube, xds = Recording("kube"), Recording("xds", reject={"node-a": "NACK: bad route"})
    both = FanOut(kube, xds)
    desired = both.render("C")  # type: ignore[arg-type]
    pushed = asyncio.run(both.push(desired, revision="r1"))
    assert kube.pushed == [("kube of C", "r1")] and xds.pushed == [("xds of C", "r1")]
    assert (pushed.changed, pushed.pruned, pushed.inventory) == (4, 1, {"kube": "r1"})
    answer = asyncio.run(both.confirm(pushed, timeout=1))
    assert answer.accepted == ("kube-part", "xds-part")
    assert answer.rejected == {"xds: node-a": "NACK: bad route"} and not answer.complete
    assert both.name == "kube + xds"
