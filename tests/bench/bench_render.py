"""Render benchmark: `meshc render --out` against a cold `meshc lint`, and a re-render.

Run: `.venv/bin/python -m tests.bench.bench_render [--services 1000] [--runs 3]`

Prints, in one run, for a synthetic mesh (tests/bench/generate.py):
  * in-process, once: compile, lower, serialise every object to YAML, write the files
    into an empty directory (where a render's time goes);
  * a cold CLI `meshc lint` (empty on-disk cache, as `bench_lint` measures it) and a CLI
    `meshc render --out` into a new directory, alternately, so both see the same load;
    their ratio against the target (render <= 1.5x lint) with PASS/MISS;
  * a CLI re-render over that output with nothing changed;
  * after a one-file change (one AccessPolicy path), a CLI re-render: how many files it
    rewrote (inode or mtime_ns moved; every mtime is first set far in the past, so a
    rewrite shows however coarse the clock) against how many files' bytes changed, and
    the target "only changed files rewritten" with PASS/MISS.
Figures are medians of --runs. Not a pytest test (tests/bench is excluded from
collection); tests/test_bench_smoke.py runs it on a tiny mesh.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.generate import MeshStats, generate_mesh

NOW = "2026-11-25T12:00:00Z"
MESHC = Path(sys.executable).parent / "meshc"
TARGET_RENDER_OVER_LINT = 1.5
_LONG_AGO_NS = 1_000_000_000 * 10**9  # 2001-09-09: older than any file a run writes


@dataclass(slots=True)
class Rewrite:
    """What a re-render did to the files under --out."""

    total: int = 0
    rewritten: list[str] = field(default_factory=list)
    """Files whose inode or mtime_ns moved (written by the re-render)."""
    changed: list[str] = field(default_factory=list)
    """Files whose bytes differ before and after (or that appeared or disappeared)."""
    summary: str = ""
    """The re-render's own `wrote ...` line."""

    @property
    def only_changed(self) -> bool:
        return self.rewritten == self.changed


@dataclass(slots=True)
class RenderBench:
    stats: MeshStats
    runs: int
    objects: int = 0
    compile: float = 0.0
    lower: float = 0.0
    serialise: float = 0.0
    write: float = 0.0
    lint_cli: float = 0.0
    render_cli: float = 0.0
    rerender_same: float = 0.0
    rerender_one: float = 0.0
    rewrite: Rewrite = field(default_factory=Rewrite)
    load: float = 0.0


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`meshc ARGS`; anything but exit 0 stops the benchmark (the mesh is clean)."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **env}
    result = subprocess.run(
        [str(MESHC), *args], capture_output=True, text=True, env=full_env, check=False, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(f"meshc {args[0]} exited {result.returncode}:\n{result.stderr}")
    return result


def timed_cli(*args: str, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = run_cli(*args, env=env)
    return time.perf_counter() - start, result


def in_process(root: Path, scratch: Path, result: RenderBench) -> None:
    """One in-process render, phase by phase, into an empty directory."""
    from compiler.api import compile_tree, load_tree
    from compiler.artifacts import to_yaml
    from compiler.cli.render import write_tree
    from compiler.gcpause import paused_gc
    from compiler.lower import lower

    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    with paused_gc():
        tree = load_tree(root)
        start = time.perf_counter()
        compilation = compile_tree(tree, now=now)
        compiled = time.perf_counter()
        artifacts = lower(compilation, target="istio")
        lowered = time.perf_counter()
        for _, obj in artifacts:
            to_yaml(obj)
        serialised = time.perf_counter()
        write_tree(artifacts, scratch / "in-process", fmt="yaml")
        written = time.perf_counter()
    result.objects = len(artifacts)
    result.compile = compiled - start
    result.lower = lowered - compiled
    result.serialise = serialised - lowered
    result.write = written - serialised - result.serialise  # write_tree serialises again


Snapshot = dict[str, tuple[int, int, bytes]]


def snapshot(out: Path) -> Snapshot:
    """(inode, mtime_ns, bytes) of every file under `out`, by relative path."""
    files: Snapshot = {}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            info = path.stat()
            name = path.relative_to(out).as_posix()
            files[name] = (info.st_ino, info.st_mtime_ns, path.read_bytes())
    return files


def age_files(out: Path) -> None:
    """Set every file's mtime far in the past: any rewrite then moves it."""
    for path in out.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(_LONG_AGO_NS, _LONG_AGO_NS))


def edit_one_file(root: Path, relative: str) -> None:
    """Change one path of one AccessPolicy rule: a real change to one server's policy."""
    path = root / relative
    text = path.read_text()
    anchor = 'paths: ["/api/'
    if anchor not in text:
        raise RuntimeError(f"{relative}: no rule path to edit")
    path.write_text(text.replace(anchor, 'paths: ["/api/bench-edit-', 1))


def compare(before: Snapshot, after: Snapshot) -> Rewrite:
    """Files the re-render wrote (created, or inode or mtime_ns moved) and files whose
    bytes changed (created or modified; a removed file was not written)."""
    rewritten = sorted(n for n in after if n not in before or after[n][:2] != before[n][:2])
    changed = sorted(n for n in after if n not in before or after[n][2] != before[n][2])
    return Rewrite(total=len(after), rewritten=rewritten, changed=changed)


def run_benchmark(*, services: int, runs: int, directory: Path) -> RenderBench:
    """Generate the mesh under `directory` and measure everything once."""
    if directory.exists():
        shutil.rmtree(directory)
    root = directory / "policies"
    stats = generate_mesh(root, services=services)
    result = RenderBench(stats=stats, runs=runs, load=os.getloadavg()[0])
    env = {"XDG_CACHE_HOME": str(directory / "xdg")}  # the cache key, out of the user's home
    in_process(root, directory, result)

    lint_times, render_times = [], []
    out = directory / "out-0"
    for run in range(runs):
        shutil.rmtree(root / ".meshc_cache", ignore_errors=True)
        lint_times.append(timed_cli("lint", str(root), "--now", NOW, env=env)[0])
        out = directory / f"out-{run}"  # a new directory each time: a first render
        render = ("render", str(root), "--now", NOW, "--out", str(out))
        render_times.append(timed_cli(*render, env=env)[0])
    result.lint_cli = statistics.median(lint_times)
    result.render_cli = statistics.median(render_times)

    render = ("render", str(root), "--now", NOW, "--out", str(out))
    result.rerender_same = statistics.median(timed_cli(*render, env=env)[0] for _ in range(runs))

    age_files(out)
    before = snapshot(out)
    edit_one_file(root, stats.service_files[len(stats.service_files) // 2])
    result.rerender_one, done = timed_cli(*render, env=env)
    result.rewrite = compare(before, snapshot(out))
    result.rewrite.summary = done.stderr.strip().splitlines()[-1]
    return result


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def _row(label: str, seconds: float) -> str:
    return f"  {label:<50} {seconds * 1000:7.0f} ms"


def format_report(result: RenderBench) -> str:
    stats = result.stats
    ratio = result.render_cli / result.lint_cli
    rewrite = result.rewrite
    lines = [
        f"meshc render benchmark (median of {result.runs} run(s); python "
        f"{sys.version.split()[0]}; {os.cpu_count()} CPU(s), load average {result.load:.1f} "
        "at start)",
        f"  tree: {stats.files:,} files, {stats.bytes:,} bytes, {stats.services:,} services, "
        f"{stats.rules:,} access rules; {result.objects:,} objects rendered",
        "  in-process, once: "
        f"compile {result.compile * 1000:.0f} ms, lower {result.lower * 1000:.0f} ms, "
        f"serialise {result.serialise * 1000:.0f} ms, create the files "
        f"{result.write * 1000:.0f} ms",
        _row("cold CLI `meshc lint` (empty cache)", result.lint_cli),
        _row("CLI `meshc render --out` (new directory)", result.render_cli),
        _row("CLI re-render, nothing changed", result.rerender_same),
        _row("CLI re-render after a one-file change", result.rerender_one),
        f"    render / cold lint = {ratio:.2f}x "
        f"(target <= {TARGET_RENDER_OVER_LINT:.1f}x: {_verdict(ratio <= TARGET_RENDER_OVER_LINT)})",
        f"    re-render after a one-file change: {len(rewrite.rewritten)} of {rewrite.total} "
        f"files rewritten, {len(rewrite.changed)} with changed bytes "
        f"(target: only changed files: {_verdict(rewrite.only_changed)})",
        f"    its report: {rewrite.summary}",
    ]
    if not rewrite.only_changed:
        extra = sorted(set(rewrite.rewritten) ^ set(rewrite.changed))[:5]
        lines.append(f"    rewritten but unchanged, or changed but not rewritten: {extra}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark meshc render on a synthetic mesh.")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--keep", type=Path, default=None, help="work in this directory and keep it"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="meshc-bench-render-") as scratch:
        directory = args.keep or Path(scratch) / "bench"
        result = run_benchmark(services=args.services, runs=args.runs, directory=directory)
    print(format_report(result))
    command = "python -m tests.bench.bench_render"
    print(f"  reproduce: .venv/bin/{command} --services {args.services} --runs {args.runs}")


if __name__ == "__main__":
    main()
