"""How fast hostile files are refused: YAML bombs, deep nesting, oversize files.

Run as `python -m tests.bench.bench_loader_limits`. Prints, per input, the best of a few
runs of `build_file` (parse + classify + validate) and the finding it produced. The
target is "well under a second" for each; the numbers are figures to read, not asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from compiler.api import build_file
from compiler.load.yamlnodes import MAX_FILE_BYTES

_HEAD = "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: []\n"


def billion_laughs(levels: int = 9, width: int = 10) -> bytes:
    """The classic: each anchor a list of `width` aliases to the previous one."""
    lines = [_HEAD, "  versions:\n", "    l0: &l0 {labels: {lol: lol}}\n"]
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"    l{level}: &l{level} [{aliases}]\n")
    return "".join(lines).encode()


def wide_alias(items: int = 50_000, uses: int = 9_000) -> bytes:
    """One big anchored list used many times (each use is cheap to write, costly to expand)."""
    anchored = ", ".join(str(i) for i in range(items))
    return f"a: &big [{anchored}]\nb: [{', '.join(['*big'] * uses)}]\n".encode()


CASES: dict[str, Callable[[], bytes]] = {
    "billion laughs (10^9 leaves)": billion_laughs,
    "wide alias (50k x 9k)": wide_alias,
    "flow nesting [[[ x 2,000,000": lambda: b"a: " + b"[" * 2_000_000 + b"]" * 2_000_000,
    "compact sequences - - - x 2,000,000": lambda: b"- " * 2_000_000 + b"x\n",
    "file over the size cap": lambda: b"# pad\n" * (MAX_FILE_BYTES // 6 + 1),
}


def measure(raw: bytes, *, repeat: int = 5) -> tuple[float, str]:
    best = float("inf")
    finding = ""
    for _ in range(repeat):
        start = time.perf_counter()
        result = build_file("bench.yaml", raw)
        best = min(best, time.perf_counter() - start)
        finding = "; ".join(f"{d.code} {d.span} {d.message}" for d in result.problems[:1])
    return best, finding


def main() -> None:
    for name, make in CASES.items():
        raw = make()
        seconds, finding = measure(raw)
        print(f"{name:<38} {len(raw):>9} bytes  {seconds * 1000:8.1f} ms  {finding}")


if __name__ == "__main__":
    main()
