"""Lint speed benchmark: cold CLI, compose-only, in-process re-lint, cached CLI re-run.

Run: `.venv/bin/python -m tests.bench.bench_lint [--services 1000] [--runs 3]`

Prints, in one run, for a synthetic mesh (tests/bench/generate.py):
  * the size of the tree (files, bytes, access rules);
  * compose only: ruamel's C composer (`YAML(typ="safe", pure=False).compose_all`) over
    every file, the floor any loader built on composed nodes pays;
  * a cold `meshc lint` through the real CLI with an empty on-disk cache;
  * in-process: a cold `compile_tree` and a re-lint after a one-file change, sharing one
    `compiler.api.FileCache` and one `compiler.lint.subjects.LintCache` across calls (what
    a watch session, the planner or the reconciler does);
  * a CLI re-run with the on-disk cache after a one-file change;
  * `meshc --help` start-up;
and the ratios against the targets (cold <= 2x compose, in-process re-lint <= 10 % of
cold, cached CLI re-run <= 35 % of cold) with PASS/MISS. Figures are medians of --runs.
This is not a pytest test (tests/bench is excluded from collection).
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.generate import MeshStats, generate_mesh

NOW = "2026-11-25T12:00:00Z"
MESHC = Path(sys.executable).parent / "meshc"
TARGET_COLD_OVER_COMPOSE = 2.0
TARGET_RELINT_OVER_COLD = 0.10
TARGET_CACHED_OVER_COLD = 0.35


@dataclass(slots=True)
class BenchResult:
    stats: MeshStats
    runs: int
    compose: float = 0.0
    cold_cli: float = 0.0
    cold_in_process: float = 0.0
    relint_in_process: float = 0.0
    cached_cli: float = 0.0
    help_startup: float = 0.0
    same_output: bool = False
    load: float = 0.0
    notes: list[str] = field(default_factory=list)


def median_time(
    action: Callable[[], object], runs: int, *, before: Callable[[], object] | None = None
) -> float:
    """Median wall-clock seconds of `action` over `runs` (`before` runs untimed each time)."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def policy_files(root: Path) -> list[Path]:
    """The files meshc reads (dot-directories such as the cache are skipped)."""
    return sorted(
        p
        for p in root.rglob("*.y*ml")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def compose_all_files(root: Path) -> int:
    """Compose every file with ruamel's stock C composer; returns the number of documents."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=False)
    count = 0
    for path in policy_files(root):
        count += sum(1 for _ in yaml.compose_all(path.read_bytes().decode("utf-8")))
    return count


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [str(MESHC), *args], capture_output=True, text=True, env=full_env, check=False, timeout=600
    )


def lint_cli(
    root: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`meshc lint ROOT`; a clean synthetic mesh must exit 0."""
    result = run_cli("lint", str(root), "--now", NOW, *extra, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"meshc lint exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


class OneFileEditor:
    """Changes one service file a little differently each time (a new label value)."""

    def __init__(self, root: Path, relative: str) -> None:
        self.path = root / relative
        self.relative = relative
        self.original = self.path.read_bytes()
        self.count = 0

    def edited(self) -> bytes:
        self.count += 1
        marker = b"  labels: {team: "
        if marker not in self.original:
            return self.original + f"# edit {self.count}\n".encode()
        return self.original.replace(marker, f"  labels: {{edit: e{self.count}, team: ".encode(), 1)

    def edit_on_disk(self) -> None:
        self.path.write_bytes(self.edited())

    def restore(self) -> None:
        self.path.write_bytes(self.original)


def in_process(root: Path, editor: OneFileEditor, runs: int) -> tuple[float, float]:
    """(cold compile, re-lint after a one-file change) through one shared `Session` (the
    cold figure starts from a fresh one each time)."""
    from compiler.api import Session, compile_tree, load_tree

    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    tree = load_tree(root)
    cold = median_time(lambda: compile_tree(tree, now=now, session=Session()), runs)
    session = Session()
    compile_tree(tree, now=now, session=session)

    def relint() -> None:
        tree.files[editor.relative] = editor.edited()
        compilation = compile_tree(tree, now=now, session=session)
        if compilation.blocking():
            raise RuntimeError(f"the edited mesh does not lint clean: {compilation.blocking()[:3]}")

    return cold, median_time(relint, runs)


def run_benchmark(
    *, services: int, runs: int, directory: Path, rules_per_service: int = 10
) -> BenchResult:
    """Generate the mesh in `directory` and measure everything once."""
    if directory.exists():
        shutil.rmtree(directory)
    stats = generate_mesh(directory, services=services, rules_per_service=rules_per_service)
    result = BenchResult(stats=stats, runs=runs, load=os.getloadavg()[0])
    cache_dir = directory / ".meshc_cache"
    editor = OneFileEditor(directory, stats.service_files[len(stats.service_files) // 2])
    # the cache key lives outside the tree; keep the benchmark's in the scratch directory
    env = {"XDG_CACHE_HOME": str(directory.parent / f"{directory.name}-xdg")}

    result.compose = median_time(lambda: compose_all_files(directory), runs)
    result.cold_cli = median_time(
        lambda: lint_cli(directory, env=env),
        runs,
        before=lambda: shutil.rmtree(cache_dir, ignore_errors=True),
    )
    result.cold_in_process, result.relint_in_process = in_process(directory, editor, runs)

    lint_cli(directory, env=env)  # fills the on-disk cache
    result.cached_cli = median_time(
        lambda: lint_cli(directory, env=env), runs, before=editor.edit_on_disk
    )
    cached = lint_cli(directory, env=env)
    uncached = lint_cli(directory, "--no-cache", env=env)
    result.same_output = (cached.stdout, cached.stderr) == (uncached.stdout, uncached.stderr)
    editor.restore()
    result.help_startup = median_time(lambda: run_cli("--help"), runs)
    if not (cache_dir / f"lint-v{_schema()}.bin").is_file():
        result.notes.append("the on-disk cache was not written (unwritable directory or key?)")
    return result


def _schema() -> int:
    from compiler.cache import SCHEMA_VERSION

    return SCHEMA_VERSION


def _target_line(name: str, value: float, target: float, unit: str) -> str:
    verdict = "PASS" if value <= target else "MISS"
    if unit == "%":
        return f"    {name:<18} = {value:6.1%}  (target <= {target:.0%})  {verdict}"
    return f"    {name:<18} = {value:5.2f}x  (target <= {target:.1f}x)  {verdict}"


def format_report(result: BenchResult) -> str:
    stats = result.stats
    cold = result.cold_cli
    relint = result.relint_in_process
    lines = [
        f"meshc lint benchmark (median of {result.runs} run(s); python {sys.version.split()[0]}; "
        f"{os.cpu_count()} CPU(s), load average {result.load:.1f} at start)",
        f"  tree: {stats.files:,} files, {stats.bytes:,} bytes ({stats.bytes / 1e6:.2f} MB), "
        f"{stats.services:,} services in {stats.namespaces} namespaces, "
        f"{stats.rules:,} access rules, {stats.rollouts} rollouts, "
        f"{stats.resilience} resilience policies",
        f"  compose only (ruamel C composer, all files)      {result.compose:7.3f} s",
        f"  cold CLI `meshc lint` (empty cache)              {cold:7.3f} s",
        f"  in-process cold compile_tree                     {result.cold_in_process:7.3f} s",
        f"  in-process re-lint after a one-file change       {result.relint_in_process:7.3f} s",
        f"  CLI re-run with on-disk cache, one file changed  {result.cached_cli:7.3f} s",
        f"  `meshc --help` start-up                          {result.help_startup:7.3f} s",
        f"  cached and uncached CLI output identical: {'yes' if result.same_output else 'NO'}",
        "  targets:",
        _target_line("cold / compose", cold / result.compose, TARGET_COLD_OVER_COMPOSE, "x"),
        _target_line("re-lint / cold", relint / cold, TARGET_RELINT_OVER_COLD, "%"),
        _target_line("cached CLI / cold", result.cached_cli / cold, TARGET_CACHED_OVER_COLD, "%"),
    ]
    lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark meshc lint on a synthetic mesh.")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rules-per-service", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--keep", type=Path, default=None, help="generate into this directory and keep it"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="meshc-bench-") as scratch:
        directory = args.keep or Path(scratch) / "mesh"
        result = run_benchmark(
            services=args.services,
            runs=args.runs,
            directory=directory,
            rules_per_service=args.rules_per_service,
        )
    print(format_report(result))
    command = "python -m tests.bench.bench_lint"
    print(f"  reproduce: .venv/bin/{command} --services {args.services} --runs {args.runs}")


if __name__ == "__main__":
    main()
