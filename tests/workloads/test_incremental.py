"""The manifests are engine inputs: workload checks re-run only when what they read changes,
and an incremental compile equals a fresh one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pytest

from compiler.api import Session, compile_tree
from compiler.model.mesh import MeshModel
from compiler.workloads import registry
from compiler.workloads.objects import Inventory
from compiler.workloads.registry import WorkloadFinding
from compiler.workloads.sources import WorkloadSources
from tests.helpers import NOW, tree
from tests.workloads.helpers import app, service

INTENTS = {"cart.yaml": service("cart"), "web.yaml": service("web")}


def _sources(manifests: dict[str, str]) -> WorkloadSources:
    return WorkloadSources({name: text.encode() for name, text in sorted(manifests.items())})


def _counting(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    for code, check in list(registry.WORKLOAD_CHECKS.items()):

        def counted(
            model: MeshModel, inventory: Inventory, *, _code: str = code, _check=check
        ) -> Iterable[WorkloadFinding]:
            calls[_code] += 1
            return list(_check(model, inventory))

        monkeypatch.setitem(registry.WORKLOAD_CHECKS, code, counted)
    return calls


def test_an_edit_that_changes_no_object_reruns_no_check(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    session = Session()
    manifests = {"cart.yaml": app("cart"), "web.yaml": app("web")}
    compile_tree(tree(INTENTS), now=NOW, session=session, workloads=_sources(manifests))
    assert calls and all(count == 1 for count in calls.values())
    calls.clear()
    manifests["web.yaml"] += "# a trailing comment changes the bytes, not the objects\n"
    compile_tree(tree(INTENTS), now=NOW, session=session, workloads=_sources(manifests))
    assert sum(calls.values()) == 0


def test_incremental_compiles_equal_fresh_ones() -> None:
    session = Session()
    steps = [
        {"cart.yaml": app("cart"), "web.yaml": app("web")},
        {"cart.yaml": app("cart", account="other"), "web.yaml": app("web")},
        {"cart.yaml": app("cart", account="other")},
        {"cart.yaml": app("cart", labels="{app: carts}")},
        {},
        {"cart.yaml": app("cart"), "web.yaml": app("web")},
    ]
    seen: list[tuple[str, ...]] = []
    for manifests in steps:
        incremental = compile_tree(
            tree(INTENTS), now=NOW, session=session, workloads=_sources(manifests)
        )
        fresh = compile_tree(tree(INTENTS), now=NOW, workloads=_sources(manifests))
        assert incremental.diagnostics == fresh.diagnostics
        assert incremental.notes == fresh.notes
        seen.append(tuple(d.code for d in incremental.diagnostics if d.code.startswith("MC7")))
    assert seen[0] == seen[-1] == seen[-2] == ()
    assert seen[1] == ("MC706",)  # cart runs as another account
    assert "MC702" in seen[3]  # cart's pods lost their labels


def test_the_benchmark_runs_and_finds_the_edited_manifest() -> None:
    from tests.bench.bench_workloads import report, run

    figures = run(20)
    assert figures.findings == 1  # svc0's pods lost their labels: MC702
    assert "with --workloads, cold" in report(figures)
