"""Scale benchmark: larger generated meshes and odd shapes, looking for super-linear phases.

Run: `.venv/bin/python -m tests.bench.bench_scale [--sizes 1000,4000] [--shapes all] [--no-cli]`

For each mesh (tests/bench/generate.py, with `Shape` for the odd ones) it measures, in one
process: a cold `compile_tree` (a fresh Session), `lower` to Istio, the meaning
summary (`compiler.plan.meaning.summarise`), a one-file re-compile through the warm caches
(the same Session), and the `meshc lint` / `meshc render` CLI (fresh
processes, no on-disk cache). It prints milliseconds per phase and per service.

Scaling is judged two ways:
  * plain meshes of increasing size: the ratio of each phase between consecutive sizes
    against the size ratio (a linear phase scales ~4x from 1,000 to 4,000 services);
  * odd shapes at two magnitudes on the same base mesh (hub callers, rules in one policy,
    chain depth, services sharing an identity, versions and rollout steps, namespaces,
    a policy naming every service): the extra time over the plain base, whose ratio is
    compared with the magnitude ratio;
  * a hub whose AccessPolicy has one rule per caller, at each plain size: its compile and
    CLI lint against the plain mesh of the same size, with the issue's target
    (`HUB_RULES_TARGET`, PASS/MISS).
A ratio above 1.5x the linear one is flagged `SUPER-LINEAR?`. The CLI lint's own peak
RSS is recorded (tests/bench/bench_memory.py) and the largest plain size's is printed
against its target. Not a pytest test.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tests.bench.bench_memory import lint_peak_rss, peak_line
from tests.bench.generate import Shape, generate_mesh

T = TypeVar("T")

NOW = "2026-11-25T12:00:00Z"
MESHC = Path(sys.executable).parent / "meshc"
FLAG_FACTOR = 1.5
"""A phase whose ratio exceeds FLAG_FACTOR x the linear ratio is flagged."""
FLAG_FLOOR_MS = 50.0
"""Extras below this many milliseconds are noise, never flagged."""
PHASES = ("compile", "lower", "summarise", "recompile", "lint_cli", "render_cli")
HUB_RULES_TARGET = 1.2
"""A hub with one rule per caller may cost at most this much over the plain mesh."""


@dataclass(frozen=True, slots=True)
class Case:
    """One mesh to measure: a label, its size and its shape, and its magnitude (the
    number the shape scales with, for the odd shapes)."""

    label: str
    services: int
    shape: Shape = field(default_factory=Shape)
    magnitude: int = 0


@dataclass(slots=True)
class Figures:
    case: Case
    services: int = 0
    findings: int = 0
    objects: int = 0
    ms: dict[str, float] = field(default_factory=dict)
    peak_rss: int = 0
    """Bytes: the peak RSS of the CLI lint (0 when not run)."""
    notes: list[str] = field(default_factory=list)


def _timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    return result, (time.perf_counter() - start) * 1000


def _best_after(
    prepare: Callable[[], Any], action: Callable[[Any], T], runs: int
) -> tuple[T, float]:
    """`_best` of `action(prepare())`, timing `action` only (each run starts afresh)."""
    best, result = math.inf, None
    for _ in range(runs):
        state = prepare()
        gc.collect()
        result, elapsed = _timed(lambda: action(state))  # noqa: B023 (called at once)
        best = min(best, elapsed)
    assert result is not None
    return result, best


def _best(action: Callable[[], T], runs: int) -> tuple[T, float]:
    """The last result and the fastest of `runs` timings, each from a collected heap: a
    shared machine and the collector otherwise move single figures by 2-4x."""
    best, result = math.inf, None
    for _ in range(runs):
        gc.collect()
        result, elapsed = _timed(action)
        best = min(best, elapsed)
    assert result is not None
    return result, best


def _cli(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    start = time.perf_counter()
    result = subprocess.run(
        [str(MESHC), *args], capture_output=True, text=True, env=env, check=False, timeout=900
    )
    return result, (time.perf_counter() - start) * 1000


def _edit(data: bytes, count: int) -> bytes:
    """A one-file change the compiler must re-read: a new label on the first Service."""
    marker = b"  labels: {team: "
    if marker in data:
        return data.replace(marker, f"  labels: {{edit: e{count}, team: ".encode(), 1)
    return data + f"# edit {count}\n".encode()


def measure(case: Case, directory: Path, *, cli: bool, runs: int) -> Figures:
    """Generate `case` into `directory` and time every phase (in-process: best of `runs`)."""
    from compiler.api import Session, compile_tree, load_tree
    from compiler.gcpause import paused_gc
    from compiler.lower import lower
    from compiler.plan.meaning import summarise

    if directory.exists():
        shutil.rmtree(directory)
    stats = generate_mesh(directory, services=case.services, shape=case.shape)
    figures = Figures(case=case, services=stats.services)
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    tree = load_tree(directory)

    def cold() -> tuple[Any, Session]:
        session = Session()
        return compile_tree(tree, now=now, session=session), session

    def fresh() -> Any:
        return compile_tree(tree, now=now)

    (compilation, session), figures.ms["compile"] = _best(cold, runs)
    figures.findings = len(compilation.diagnostics)
    if compilation.ok:
        artifacts, figures.ms["lower"] = _best_after(
            fresh, lambda side: lower(side, target="istio"), runs
        )
        figures.objects = len(artifacts)
    else:
        figures.notes.append("does not compile: lower and render skipped")

    def meaning(side: Any) -> Any:
        with paused_gc():  # as the planner runs it
            return summarise(side)

    _, figures.ms["summarise"] = _best_after(fresh, meaning, runs)
    edited = stats.service_files[len(stats.service_files) // 2]
    times = []
    for count in (1, 2, 3):  # the median of three one-file re-compiles
        tree.files[edited] = _edit(tree.files[edited], count)
        _, elapsed = _timed(lambda: compile_tree(tree, now=now, session=session))
        times.append(elapsed)
    figures.ms["recompile"] = sorted(times)[1]
    if cli:
        linted = lint_peak_rss(directory)
        figures.ms["lint_cli"], figures.peak_rss = linted.ms, linted.peak_bytes
        if linted.returncode not in (0, 1):
            figures.notes.append(f"meshc lint exited {linted.returncode}: {linted.stderr}")
        if compilation.ok:
            result, figures.ms["render_cli"] = _cli("render", str(directory), "--now", NOW)
            if result.returncode != 0:
                figures.notes.append(
                    f"meshc render exited {result.returncode}: {result.stderr[-300:]}"
                )
    return figures


def plain_cases(sizes: list[int]) -> list[Case]:
    return [Case(f"plain {size}", size, magnitude=size) for size in sizes]


def odd_cases(base: int, names: set[str], sizes: list[int]) -> list[tuple[str, list[Case]]]:
    """Each odd shape at a small and a large magnitude, on a `base`-service mesh; the hub
    with one rule per caller at each plain size instead (it is judged against those)."""
    shapes: dict[str, list[Case]] = {
        "hub": [Case(f"hub, {n} services", n, Shape(hub=True), n) for n in (base, 4 * base)],
        "hub-rules": [
            Case(f"hub, a rule per caller, {n} services", n, Shape(hub_rule_per_caller=True), n)
            for n in sizes
        ],
        "big-policy": [
            Case(f"one policy of {n} rules", base, Shape(big_policy_rules=n), n)
            for n in (500, 2000)
        ],
        "namespaces": [Case(f"{n} namespaces", base, Shape(namespaces=n), n) for n in (25, 100)],
        "chain": [
            Case(f"retrying chain of depth {n}", base, Shape(chain_depth=n), n) for n in (50, 200)
        ],
        "shared-identity": [
            Case(f"{n} services share one identity", base, Shape(shared_identity=n), n)
            for n in (base // 4, base)
        ],
        "versions": [
            Case(
                f"{n} versions, {2 * n} rollout steps",
                base,
                Shape(versions=n, rollout_steps=2 * n),
                n,
            )
            for n in (12, 50)
        ],
    }
    return [(name, cases) for name, cases in shapes.items() if "all" in names or name in names]


def _row(figures: Figures) -> str:
    ms = figures.ms
    cells = " ".join(f"{ms[p]:9.0f}" if p in ms else f"{'-':>9}" for p in PHASES)
    per = ms["compile"] / max(1, figures.services) * 1000
    return (
        f"  {figures.case.label:<38} {figures.services:6d} {cells}  {per:7.0f} us/svc "
        f"{figures.findings:6d} findings"
    )


def _header() -> str:
    names = " ".join(f"{p:>9}" for p in PHASES)
    return f"  {'mesh':<38} {'svcs':>6} {names}  (ms; compile per service; findings)"


def _ratio_line(name: str, small: float, large: float, linear: float) -> str:
    if small <= 0 or large < FLAG_FLOOR_MS:
        return f"    {name:<11} {small:8.0f} -> {large:8.0f} ms   (below {FLAG_FLOOR_MS:.0f} ms)"
    if small < FLAG_FLOOR_MS:  # a ratio over a few noisy milliseconds says nothing
        figures = f"{small:8.0f} -> {large:8.0f} ms"
        return f"    {name:<11} {figures}   (smaller side below {FLAG_FLOOR_MS:.0f} ms: not judged)"
    ratio = large / small
    flag = "  SUPER-LINEAR?" if ratio > FLAG_FACTOR * linear else ""
    figures = f"{small:8.0f} -> {large:8.0f} ms   {ratio:5.1f}x (linear {linear:.1f}x)"
    return f"    {name:<11} {figures}{flag}"


def compare_plain(rows: list[Figures]) -> list[str]:
    lines = []
    for small, large in itertools.pairwise(rows):
        linear = large.services / small.services
        lines.append(f"  {small.case.label} -> {large.case.label}:")
        for phase in PHASES:
            if phase in small.ms and phase in large.ms:
                lines.append(_ratio_line(phase, small.ms[phase], large.ms[phase], linear))
    return lines


def compare_odd(name: str, base: Figures, rows: list[Figures]) -> list[str]:
    """The extra time of the shape over the plain base, small vs large magnitude."""
    if len(rows) != 2:
        return []  # one magnitude: nothing to scale against
    small, large = rows
    linear = large.case.magnitude / small.case.magnitude
    lines = [
        f"  {name}: extra over the plain base, magnitude {small.case.magnitude} -> "
        f"{large.case.magnitude}:"
    ]
    for phase in PHASES:
        if phase in small.ms and phase in large.ms and phase in base.ms:
            if name in ("hub", "hub-rules"):  # the hub grows the base too: compare totals
                lines.append(_ratio_line(phase, small.ms[phase], large.ms[phase], linear))
                continue
            extra_small = max(1.0, small.ms[phase] - base.ms[phase])
            extra_large = max(0.0, large.ms[phase] - base.ms[phase])
            lines.append(_ratio_line(phase, extra_small, extra_large, linear))
    return lines


def against_plain(rows: list[Figures], plain: list[Figures]) -> list[str]:
    """Each hub-with-a-rule-per-caller mesh against the plain mesh of its size: the lint
    (in-process compile and the CLI) within `HUB_RULES_TARGET` of it."""
    lines = []
    for figures in rows:
        same = next((p for p in plain if p.case.services == figures.case.services), None)
        if same is None:
            continue
        lines.append(f"  {figures.case.label} vs {same.case.label}:")
        for phase in ("compile", "lint_cli"):
            if phase not in figures.ms or phase not in same.ms:
                continue
            ratio = figures.ms[phase] / max(1.0, same.ms[phase])
            verdict = "PASS" if ratio <= HUB_RULES_TARGET else "MISS"
            lines.append(
                f"    {phase:<11} {same.ms[phase]:8.0f} -> {figures.ms[phase]:8.0f} ms   "
                f"{ratio:5.2f}x (target <= {HUB_RULES_TARGET}x: {verdict})"
            )
    return lines


def peak_rss_lines(plain: list[Figures]) -> list[str]:
    """The largest plain mesh's CLI lint peak RSS against its target."""
    measured = [f for f in plain if f.peak_rss]
    if not measured:
        return []
    largest = max(measured, key=lambda f: f.services)
    return [peak_line(largest.services, largest.peak_rss)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="meshc at larger scale and odd shapes.")
    parser.add_argument("--sizes", default="1000,4000", help="plain mesh sizes, comma-separated")
    parser.add_argument(
        "--shapes",
        default="all",
        help="odd shapes: all, none, or some of hub,hub-rules,big-policy,namespaces,chain,"
        "shared-identity,versions",
    )
    parser.add_argument("--base", type=int, default=1000, help="base size for the odd shapes")
    parser.add_argument("--no-cli", action="store_true", help="skip the meshc lint/render runs")
    parser.add_argument(
        "--runs", type=int, default=3, help="in-process timings: the best of this many runs"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    names = set(args.shapes.split(","))
    cli = not args.no_cli
    print(
        f"meshc scale benchmark (python {sys.version.split()[0]}; {os.cpu_count()} CPU(s), "
        f"load average {os.getloadavg()[0]:.1f} at start); in-process figures: best of "
        f"{args.runs} runs, CLI figures: one run"
    )
    print(_header())
    with tempfile.TemporaryDirectory(prefix="meshc-scale-") as scratch:
        directory = Path(scratch) / "mesh"
        plain = []
        for case in plain_cases(sizes):
            plain.append(measure(case, directory, cli=cli, runs=args.runs))
            print(_row(plain[-1]), flush=True)
        base = next((f for f in plain if f.services == args.base), None)
        odd: list[tuple[str, list[Figures]]] = []
        for name, cases in odd_cases(args.base, names - {"none"}, sizes):
            if base is None:
                base = measure(
                    Case(f"plain {args.base}", args.base), directory, cli=cli, runs=args.runs
                )
                print(_row(base), flush=True)
            odd.append(
                (name, [measure(case, directory, cli=cli, runs=args.runs) for case in cases])
            )
            for figures in odd[-1][1]:
                print(_row(figures), flush=True)
    lines = ["scaling:", *compare_plain(plain)]
    for name, rows in odd:
        assert base is not None
        lines.extend(compare_odd(name, base, rows))
        if name == "hub-rules":
            lines.extend(against_plain(rows, plain))
    lines.extend(peak_rss_lines(plain))
    for figures in [*plain, *(f for _, rows in odd for f in rows)]:
        lines.extend(f"  note ({figures.case.label}): {note}" for note in figures.notes)
    print("\n".join(lines))
    print(
        f"  reproduce: .venv/bin/python -m tests.bench.bench_scale --sizes {args.sizes} "
        f"--shapes {args.shapes} --base {args.base} --runs {args.runs}"
        f"{' --no-cli' if not cli else ''}"
    )


if __name__ == "__main__":
    main()
