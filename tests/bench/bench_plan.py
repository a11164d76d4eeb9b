"""Benchmark: render and plan a generated 1,000-service mesh, and the one-file re-plan.

Run: `.venv/bin/python -m tests.bench.bench_plan [--services N]`. Prints every figure in
one run (a benchmark, never a timed test):

- render: compile + lower the whole tree, in-process (cold) and `meshc render` (CLI);
- cold plan: a fresh `Planner` plans base A -> head B (B changes one service file);
- one-file re-plans: the same planner then plans A -> C0, A -> C1, ... where each Ci
  changes one more file than the head before it (a real new access rule), as a watch
  session or a review bot would; every head is new to the planner. Each is reported as
  the total, the part spent reading the two Git trees (blob bytes are cached by blob id)
  and the rest, with how many queries the planner's engine re-ran and how many it
  found unchanged; the median of the rests is held to the targets (<= 50 ms, and >= 20x faster
  than the cold plan without its Git reading);
- `meshc plan --base A --head C<last>` as a fresh CLI process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from compiler.api import compile_tree, load_tree
from compiler.lower import lower
from compiler.plan.engine import Planner, build_plan
from compiler.plan.report import plan_document
from compiler.plan.source import open_source, read_commit_tree, resolve_revision
from tests.bench.generate import generate_mesh
from tests.helpers import BIN, NOW
from tests.plan.gitrepo import commit_all, git, init_repo

T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    return result, (time.perf_counter() - start) * 1000


def change_one_file(root: Path, relative: str, marker: str) -> None:
    """Widen one server's access: a new rule admitting a fresh path (a real meaning change)."""
    path = root / "policies" / relative
    text = path.read_text()
    anchor = "  rules:\n"
    assert anchor in text, f"{relative}: no rules block to edit"
    first = text.split("    to:", 1)[0].split(anchor, 1)[1]  # the first rule's `from:` line(s)
    rule = f"{first}    to: {{methods: [GET], paths: ['/{marker}/*']}}\n"
    path.write_text(text.replace(anchor, anchor + rule, 1))


def plan_in_process(planner: Planner, repo: Path, base: str, head: str) -> tuple[float, float, int]:
    """(total ms, git-reading ms, risk flags) for one plan through `planner`; prints the
    phases of the head side's compilation."""
    start = time.perf_counter()
    source = open_source(repo, "policies")
    read_start = time.perf_counter()
    base_rev, head_rev = resolve_revision(source, base), resolve_revision(source, head)
    base_tree = read_commit_tree(source, base_rev, planner.blobs)
    head_tree = read_commit_tree(source, head_rev, planner.blobs)
    reading = (time.perf_counter() - read_start) * 1000
    source.repo.close()  # type: ignore[attr-defined]
    base_side = planner.compile_side(base_rev, base_tree, now=NOW, rollout_state={})
    head_side = planner.compile_side(head_rev, head_tree, now=NOW, rollout_state={})
    phases = dict(planner.timings)
    diff_start = time.perf_counter()
    plan = build_plan(base_side, head_side, now=NOW, diffs=planner.diffs)
    plan_document(plan)
    total = (time.perf_counter() - start) * 1000
    phases["diff+document"] = time.perf_counter() - diff_start
    print(
        "  head side: "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in phases.items())
    )
    assert plan.head.compiles, [str(d.message) for d in plan.head.findings[:3]]
    return total, reading, len(plan.risks)


def cli(*args: str) -> float:
    start = time.perf_counter()
    env = {**os.environ, "MESHC_NO_CACHE": ""}
    result = subprocess.run(
        [str(BIN / "meshc"), *args], capture_output=True, text=True, check=False, env=env
    )
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode not in (0, 1):
        print(result.stderr, file=sys.stderr)
        raise SystemExit(f"meshc {args[0]} failed with exit {result.returncode}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument(
        "--replans", type=int, default=5, help="one-file re-plans, each to a new head"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="meshc-bench-plan-") as tmp:
        repo = init_repo(Path(tmp) / "repo")
        stats = generate_mesh(repo / "policies", services=args.services)
        commit_a = commit_all(repo, "A")
        files = stats.service_files
        change_one_file(repo, files[len(files) // 2], "bench-b")
        commit_b = commit_all(repo, "B")
        heads = []
        for index in range(args.replans):
            edited = files[(len(files) // 3 + 37 * index) % len(files)]
            change_one_file(repo, edited, f"bench-c{index}")
            heads.append(commit_all(repo, f"C{index}"))
        commit_c = heads[-1]
        git(repo, "gc", "-q")
        print(
            f"mesh: {stats.services} services, {stats.files} files, {stats.bytes:,} bytes, "
            f"{stats.namespaces} namespaces"
        )

        tree = load_tree(repo / "policies")
        compilation, compile_ms = timed(lambda: compile_tree(tree, now=NOW))
        artifacts, lower_ms = timed(lambda: lower(compilation, target="istio"))
        print(
            f"render, in-process (cold): compile {compile_ms:.0f} ms + lower {lower_ms:.0f} ms "
            f"= {compile_ms + lower_ms:.0f} ms for {len(artifacts)} objects"
        )
        render_cli = cli("render", str(repo / "policies"), "--now", "2026-11-25T12:00:00Z")
        print(f"render, CLI (meshc render, fresh process): {render_cli:.0f} ms")

        planner = Planner()
        cold, cold_read, risks = plan_in_process(planner, repo, commit_a, commit_b)
        print(
            f"plan A->B, in-process (cold planner): {cold:.0f} ms "
            f"(reading both Git trees {cold_read:.0f} ms); {risks} risk flag(s)"
        )
        rests = []
        for index, head in enumerate(heads):
            warm, warm_read, risks = plan_in_process(planner, repo, commit_a, head)
            beyond = warm - warm_read
            rests.append(beyond)
            stats = planner.session.engine.stats
            print(
                f"plan A->C{index}, one-file re-plan, in-process (warm planner): {warm:.1f} ms "
                f"total, reading both Git trees {warm_read:.1f} ms, the rest {beyond:.1f} ms; "
                f"engine re-ran {stats.executed} queries and found {stats.reused} unchanged; "
                f"{risks} risk flag(s)"
            )
        beyond = statistics.median(rests)
        print(
            f"one-file re-plan beyond reading the Git trees, median of {len(rests)}: "
            f"{beyond:.1f} ms (target <= 50 ms: {'PASS' if beyond <= 50 else 'MISS'})"
        )
        speedup = (cold - cold_read) / max(beyond, 0.001)
        print(
            f"  speed-up over the cold plan, excluding Git reading: {speedup:.1f}x "
            f"(target >= 20x: {'PASS' if speedup >= 20 else 'MISS'})"
        )
        plan_args = ["plan", "--repo", str(repo), "--path", "policies", "--base", commit_a]
        plan_args += ["--now", "2026-11-25T12:00:00Z", "--format", "json"]
        plan_cli = cli(*plan_args, "--head", commit_c, "--no-cache")
        print(
            f"plan A->C{len(heads) - 1}, CLI (meshc plan, fresh process, no cache): "
            f"{plan_cli:.0f} ms"
        )
        lint_cli = cli("lint", str(repo / "policies"), "--now", "2026-11-25T12:00:00Z")
        cached_cli = cli(*plan_args)
        print(
            f"meshc lint (fills the cache) {lint_cli:.0f} ms, then meshc plan A->worktree "
            f"reading it: {cached_cli:.0f} ms"
        )


if __name__ == "__main__":
    main()
