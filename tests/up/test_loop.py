"""The reconcile loop's phases with a stand-in target, and the folder source's change
detection: a broken revision is refused and never pushed, the last good one stays, a
rejection is recorded, the folder's edits are noticed and debounced."""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path
from typing import Any

from compiler.api import Compilation
from compiler.load.discover import PolicyTree
from reconciler.errors import MeshdError
from reconciler.loop import Acceptance, PassOutcome, Pushed, Reconciler, Revision
from reconciler.source.folder import FolderSource, fingerprint
from tests.helpers import MESH

SERVICE = textwrap.dedent(
    """\
    apiVersion: meshc/v1
    kind: Service
    metadata: {name: web, namespace: shop}
    spec:
      ports: [{name: http, port: 8080, protocol: http}]
    """
)


class MemorySource:
    name = "memory"

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.reads = 0

    def read(self) -> Revision:
        self.reads += 1
        tree = PolicyTree(files={k: v.encode() for k, v in self.files.items()})
        return Revision(id=f"r{self.reads}", tree=tree)

    async def wait_for_change(self) -> None:
        await asyncio.sleep(3600)


class RecordingTarget:
    name = "recording"

    def __init__(self, *, reject: dict[str, str] | None = None) -> None:
        self.pushed: list[str] = []
        self.reject = reject or {}

    def render(self, compilation: Compilation) -> Any:
        return sorted(str(key) for key in compilation.model.services)

    async def push(self, desired: Any, *, revision: str) -> Pushed:
        changed = int(not self.pushed or self.pushed[-1] != str(desired))
        self.pushed.append(str(desired))
        return Pushed(generation=len(self.pushed), changed=changed)

    async def confirm(self, pushed: Pushed, *, timeout: float) -> Acceptance:
        return Acceptance(accepted=("node-a",), rejected=dict(self.reject))


def _pass(reconciler: Reconciler) -> PassOutcome:
    return asyncio.run(reconciler.reconcile())


def test_a_good_revision_is_pushed_and_recorded() -> None:
    target = RecordingTarget()
    reconciler = Reconciler(MemorySource({"mesh.yaml": MESH, "web.yaml": SERVICE}), target)
    outcome = _pass(reconciler)
    assert outcome.ok and outcome.reason == "Applied"
    assert target.pushed == ["['shop/web']"]
    assert reconciler.state.last_applied_revision == "r1"
    ready = reconciler.state.condition("Ready")
    assert ready is not None and ready.status
    assert _pass(reconciler).reason == "Unchanged"


def test_a_broken_revision_is_refused_and_never_pushed() -> None:
    source = MemorySource({"mesh.yaml": MESH, "web.yaml": SERVICE})
    target = RecordingTarget()
    reconciler = Reconciler(source, target)
    _pass(reconciler)
    source.files["web.yaml"] = SERVICE + "garbage: [\n"
    outcome = _pass(reconciler)
    assert not outcome.applied and outcome.reason == "CompileFailed"
    assert any(f.startswith("web.yaml:7:1: error MC101") for f in outcome.findings)
    assert target.pushed == ["['shop/web']"]  # nothing more was pushed
    assert reconciler.state.last_applied_revision == "r1"
    assert reconciler.state.last_attempted_revision == "r2"
    assert reconciler.state.findings == list(outcome.findings)
    stalled = reconciler.state.condition("Stalled")
    assert stalled is not None and stalled.status and stalled.reason == "CompileFailed"
    ready = reconciler.state.condition("Ready")
    assert ready is not None and "serving r1" in ready.message


def test_a_rejection_is_recorded_with_the_targets_message() -> None:
    target = RecordingTarget(reject={"node-b": "cannot bind 127.0.0.1:1: in use"})
    reconciler = Reconciler(MemorySource({"mesh.yaml": MESH, "web.yaml": SERVICE}), target)
    outcome = _pass(reconciler)
    assert outcome.reason == "Rejected" and not outcome.ok
    assert outcome.rejected == {"node-b": "cannot bind 127.0.0.1:1: in use"}
    ready = reconciler.state.condition("Ready")
    assert ready is not None and not ready.status and "node-b: cannot bind" in ready.message


def test_a_target_that_cannot_render_refuses_the_revision() -> None:
    class Refusing(RecordingTarget):
        def render(self, compilation: Compilation) -> Any:
            raise MeshdError("this target cannot express shop/web")

    target = Refusing()
    outcome = _pass(Reconciler(MemorySource({"mesh.yaml": MESH, "web.yaml": SERVICE}), target))
    assert outcome.reason == "RenderFailed" and target.pushed == []
    assert outcome.findings == ("this target cannot express shop/web",)


def test_the_loop_passes_again_on_change_and_stops_on_request() -> None:
    class Changing(MemorySource):
        async def wait_for_change(self) -> None:
            await asyncio.sleep(0.01)

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        seen: list[str] = []

        def on_pass(outcome: PassOutcome) -> None:
            seen.append(outcome.reason)
            if len(seen) == 3:
                stop.set()

        reconciler = Reconciler(Changing({"mesh.yaml": MESH}), RecordingTarget())
        await asyncio.wait_for(reconciler.run(stop=stop, on_pass=on_pass), 10)
        return seen

    assert asyncio.run(scenario()) == ["Applied", "Unchanged", "Unchanged"]


def _write(path: Path, text: str, *, mtime_ns: int | None = None) -> None:
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def test_folder_revision_ids_follow_content(tmp_path: Path) -> None:
    _write(tmp_path / "mesh.yaml", MESH)
    source = FolderSource(tmp_path)
    first = source.read().id
    _write(tmp_path / "mesh.yaml", MESH)  # saved again, unchanged
    assert source.read().id == first
    _write(tmp_path / "web.yaml", SERVICE)
    assert source.read().id != first


def test_folder_fingerprint_skips_dot_directories(tmp_path: Path) -> None:
    _write(tmp_path / "mesh.yaml", MESH)
    before = fingerprint(tmp_path)
    (tmp_path / ".git").mkdir()
    _write(tmp_path / ".git" / "index", "x")
    assert fingerprint(tmp_path) == before


def test_folder_change_is_noticed_after_it_settles(tmp_path: Path) -> None:
    _write(tmp_path / "mesh.yaml", MESH)
    source = FolderSource(tmp_path, poll=0.02, debounce=0.05)
    source.read()

    async def scenario() -> bool:
        waiting = asyncio.create_task(source.wait_for_change())
        await asyncio.sleep(0.1)
        assert not waiting.done()  # nothing changed yet
        for step in range(5):  # a burst of saves: one change once it settles
            _write(tmp_path / "web.yaml", SERVICE + f"# {step}\n", mtime_ns=10**18 + step)
            await asyncio.sleep(0.03)
        await asyncio.wait_for(waiting, 5)
        return waiting.done()

    assert asyncio.run(scenario())
