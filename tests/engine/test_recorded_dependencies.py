"""Staleness by construction is gone: whatever an emitter, a rule or a meaning piece reads,
the engine records, so an incremental compile equals a from-scratch one.

Each walk compiles a generated mesh through one long-lived `Session`, then applies random
edits drawn from the kinds' JSON Schemas (`tests/engine/edits.py`: every field of every
kind, no hand list) and checks after every edit that the diagnostics, the Istio objects
and the meaning equal those of a fresh session. The emitters are first given new
cross-service reads at test time — a Sidecar listing each callee's ports, an
AuthorizationPolicy listing the versions of each service its rules name — with no other
edit anywhere: nothing tells the engine about them but the reads themselves.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import compiler.lower.istio as istio
from compiler.api import Compilation, Session, compile_tree
from compiler.artifacts import canonical_json
from compiler.load.discover import PolicyTree
from compiler.lower import lower
from compiler.lower.istio.common import LowerContext, Obj
from compiler.model.mesh import ServiceKey, ServiceView
from compiler.model.queries import _Services
from compiler.model.records import ServiceRecord
from compiler.plan.meaning import summarise
from tests.bench.generate import generate_mesh
from tests.engine.edits import SchemaEditor, read_tree
from tests.helpers import NOW

CALLEE_PORTS = "test.meshc.io/callee-ports"
CALLER_VERSIONS = "test.meshc.io/named-versions"


def _sidecar_with_callee_ports(original: Any) -> Any:
    def sidecar(ctx: LowerContext, view: ServiceView) -> Obj:
        obj: Obj = original(ctx, view)
        ports = []
        for callee in view.calls:
            other = ctx.model.services.get(callee)
            if other is not None:
                ports.extend(f"{callee}:{port.port}" for port in other.spec.ports)
        obj["metadata"]["annotations"][CALLEE_PORTS] = ",".join(ports)
        return obj

    return sidecar


def _policies_with_named_versions(original: Any) -> Any:
    def for_service(ctx: LowerContext, record: ServiceRecord) -> list[Obj]:
        objects: list[Obj] = original(ctx, record)
        view = record.view
        named = []
        for policy in view.policies:
            namespace = policy.model.metadata.namespace
            for rule in policy.model.spec.rules:
                for source in rule.from_:
                    if source.service and source.service != "*":
                        other = ctx.model.service(source.service, namespace)
                        if other is not None:
                            named.append(f"{other.key}={','.join(sorted(other.spec.versions))}")
        for obj in objects:
            obj["metadata"]["annotations"][CALLER_VERSIONS] = ";".join(named)
        return objects

    return for_service


@pytest.fixture
def extra_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The emitters with two new cross-service reads, and nothing else changed."""
    monkeypatch.setattr(istio, "sidecar", _sidecar_with_callee_ports(istio.sidecar))
    monkeypatch.setattr(istio, "for_service", _policies_with_named_versions(istio.for_service))
    yield


def observed(compilation: Compilation) -> tuple[Any, ...]:
    """Everything a user sees of a compile: findings, and when it compiles, every object
    (as canonical JSON) and the meaning."""
    findings = [
        (d.code, d.severity, d.span, d.message, d.hint, d.suppressed_reason)
        for d in compilation.diagnostics
    ]
    if not compilation.ok:
        return (findings, None, None)
    objects = [(str(key), canonical_json(obj)) for key, obj in lower(compilation)]
    return (findings, objects, summarise(compilation))


def _mesh(tmp_path: Path, services: int) -> dict[str, bytes]:
    generate_mesh(tmp_path / "mesh", services=services)
    return read_tree(tmp_path / "mesh")


def _walk(files: dict[str, bytes], *, seed: int, steps: int) -> int:
    """Edit `files` `steps` times; after each, incremental must equal fresh. Returns how
    many steps compiled (so the walk provably reached the lowering and the meaning)."""
    rng = random.Random(seed)
    editor = SchemaEditor()
    session = Session()
    compile_tree(PolicyTree(files=dict(files)), now=NOW, session=session)
    compiled = 0
    history: list[str] = []
    good = dict(files)
    for step in range(steps):
        history.append(editor.edit(files, rng))
        incremental = compile_tree(PolicyTree(files=dict(files)), now=NOW, session=session)
        fresh = compile_tree(PolicyTree(files=dict(files)), now=NOW)
        mine, theirs = observed(incremental), observed(fresh)
        assert mine == theirs, f"seed {seed}, step {step}: after " + " | ".join(history)
        compiled += incremental.ok
        if incremental.ok:
            good = dict(files)
        elif rng.random() < 0.8:
            files.clear()
            files.update(good)  # back to the last tree that compiled, as an author would
            history.append("back to the last good tree")
    return compiled


@pytest.mark.parametrize("seed", range(6))
def test_random_schema_edits_keep_incremental_equal_to_fresh(
    tmp_path: Path, extra_reads: None, seed: int
) -> None:
    files = _mesh(tmp_path, services=14)
    compiled = _walk(files, seed=seed, steps=25)
    assert compiled >= 5, f"only {compiled} of 25 steps compiled: the walk hardly lowered"


def _edit_port(files: dict[str, bytes], key: ServiceKey, port: int) -> None:
    for name, raw in files.items():
        text = raw.decode()
        if f"name: {key.name}\n  namespace: {key.namespace}\n" in text and "kind: Service" in text:
            files[name] = text.replace(
                "port: 8080, targetPort: 8080", f"port: {port}, targetPort: 8080", 1
            ).encode()
            return
    raise AssertionError(f"no Service file for {key}")


def _a_callee(compilation: Compilation) -> tuple[ServiceKey, ServiceKey]:
    for view in compilation.model.services.values():
        if view.calls:
            return view.key, view.calls[0]
    raise AssertionError("the generated mesh declares no call")


def _callee_port_edit(tmp_path: Path) -> tuple[ServiceKey, ServiceKey, Compilation, Compilation]:
    """Compile a mesh, lower it, move one callee to port 9443 and compile again through the
    same session: (caller, callee, that incremental compile, a fresh one)."""
    files = _mesh(tmp_path, services=10)
    session = Session()
    first = compile_tree(PolicyTree(files=dict(files)), now=NOW, session=session)
    caller, callee = _a_callee(first)
    lower(first)
    _edit_port(files, callee, 9443)
    again = compile_tree(PolicyTree(files=dict(files)), now=NOW, session=session)
    return caller, callee, again, compile_tree(PolicyTree(files=dict(files)), now=NOW)


def test_editing_a_callees_port_updates_the_callers_sidecar(
    tmp_path: Path, extra_reads: None
) -> None:
    """The issue's reproduction: a new read of each callee's ports, then one callee's port
    edited. Only the callee's file changes; the caller's Sidecar must follow."""
    caller, callee, again, fresh = _callee_port_edit(tmp_path)
    assert observed(again) == observed(fresh)
    sidecars = {str(key): obj for key, obj in lower(again) if key.kind == "Sidecar"}
    annotation = sidecars[f"Sidecar.networking.istio.io/{caller.namespace}/{caller.name}"]
    assert f"{callee}:9443" in annotation["metadata"]["annotations"][CALLEE_PORTS]


def test_a_read_hidden_from_the_engine_is_caught(
    tmp_path: Path, extra_reads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check has teeth: make service lookups invisible to the engine (what a hand-kept
    dependency list that forgot them amounts to) and the same edit leaves stale output."""
    original = _Services.get

    def unrecorded(self: _Services, key: ServiceKey, default: Any = None) -> Any:
        frames = self._db._frames
        hidden = frames.pop() if frames else None
        try:
            return original(self, key, default)
        finally:
            if hidden is not None:
                frames.append(hidden)

    monkeypatch.setattr(_Services, "get", unrecorded)
    _, _, again, fresh = _callee_port_edit(tmp_path)
    assert observed(again) != observed(fresh)
