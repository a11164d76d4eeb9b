"""The benchmark's generator writes a realistic mesh that lints clean, and the benchmark runs.

No timing is asserted here: the figures are printed by `python -m tests.bench.bench_lint`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.api import compile_tree, load_tree
from compiler.diagnostics import Severity
from tests.bench.bench_lint import format_report, run_benchmark
from tests.bench.generate import Shape, generate_mesh
from tests.helpers import NOW


def test_generated_mesh_lints_clean_and_is_deterministic(tmp_path: Path) -> None:
    stats = generate_mesh(tmp_path / "a", services=30, seed=7)
    again = generate_mesh(tmp_path / "b", services=30, seed=7)
    assert [(tmp_path / "a" / f).read_bytes() for f in stats.service_files] == [
        (tmp_path / "b" / f).read_bytes() for f in again.service_files
    ]
    compilation = compile_tree(load_tree(tmp_path / "a"), now=NOW)
    assert [str(d) + " " + d.message for d in compilation.blocking(Severity.WARNING)] == []
    assert len(compilation.model.services) == 30
    assert stats.files == 31 and stats.rules == 300
    assert stats.rollouts > 0 and stats.resilience > 0
    calls = sum(len(view.calls) for view in compilation.model.services.values())
    assert calls >= 27  # every service but the front ends has a caller


def test_benchmark_functions_run_and_report(tmp_path: Path) -> None:
    result = run_benchmark(services=30, runs=1, directory=tmp_path / "mesh")
    report = format_report(result)
    assert result.same_output, "cached and uncached CLI output differ"
    assert result.notes == []
    for label in ("compose only", "cold CLI", "re-lint", "on-disk cache", "--help", "targets"):
        assert label in report
    assert "300 access rules" in report


def test_scale_benchmark_runs_on_a_small_mesh(capsys: pytest.CaptureFixture[str]) -> None:
    """`bench_scale` on tiny sizes: every phase is measured and the ratio lines printed
    (the figures themselves are not asserted)."""
    from tests.bench.bench_scale import main as bench_scale

    bench_scale(
        [
            *("--sizes", "20,40", "--shapes", "hub,hub-rules,chain", "--base", "20"),
            *("--no-cli", "--runs", "1"),
        ]
    )
    out = capsys.readouterr().out
    assert "plain 20 -> plain 40:" in out
    assert "hub: extra over the plain base" in out and "chain: extra over the plain base" in out
    assert "hub, a rule per caller, 40 services vs plain 40:" in out
    assert "(target <= 1.2x: " in out
    for phase in ("compile", "lower", "summarise", "recompile"):
        assert f"    {phase} " in out


def test_render_benchmark_runs_and_judges_the_re_render(tmp_path: Path) -> None:
    """`bench_render` on a tiny mesh: every figure is printed, and the re-render after a
    one-file change rewrote exactly the files whose bytes changed (not a timing)."""
    from tests.bench.bench_render import format_report
    from tests.bench.bench_render import run_benchmark as run_render_benchmark

    result = run_render_benchmark(services=20, runs=1, directory=tmp_path / "bench")
    report = format_report(result)
    assert result.rewrite.changed and result.rewrite.only_changed, report
    assert "1 file(s) written" in result.rewrite.summary
    for label in (
        "cold CLI `meshc lint`",
        "CLI `meshc render --out`",
        "nothing changed",
        "render / cold lint",
        "(target <= 1.5x: ",
        "(target: only changed files: PASS)",
    ):
        assert label in report, label


def test_hub_with_a_rule_per_caller_lints_clean(tmp_path: Path) -> None:
    """The hub shape with one rule per caller: every caller calls the hub, every rule is
    used and none covers another, so it draws no more findings than the plain mesh."""
    stats = generate_mesh(tmp_path, services=30, shape=Shape(hub_rule_per_caller=True))
    compilation = compile_tree(load_tree(tmp_path), now=NOW)
    assert [str(d) + " " + d.message for d in compilation.blocking(Severity.WARNING)] == []
    hub = next(v for v in compilation.model.services.values() if v.key.name == "hub")
    assert len(hub.policies[0].model.spec.rules) == 30 and stats.rules == 300 + 30
    assert sum(hub.key in view.calls for view in compilation.model.services.values()) == 30


def test_memory_benchmark_reads_the_child_peak(tmp_path: Path) -> None:
    from tests.bench.bench_memory import lint_peak_rss, peak_line

    generate_mesh(tmp_path, services=10)
    run = lint_peak_rss(tmp_path)
    assert run.returncode == 0, run.stderr
    assert 10_000_000 < run.peak_bytes < 2_000_000_000
    assert peak_line(10, run.peak_bytes).endswith("(target <= 0.6 GB: PASS)")
