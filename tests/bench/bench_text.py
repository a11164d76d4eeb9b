"""Benchmark: `meshc lint` text output against JSON on one policy with many findings.

Run: `.venv/bin/python -m tests.bench.bench_text [--rules N]`. Writes one AccessPolicy with
N rules, each naming an undeclared caller (N findings), and times `meshc lint --format
text` (piped: not a terminal) and `--format json`; the target is text <= 2x JSON.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers import BIN

HEAD = """\
apiVersion: meshc/v1
kind: Mesh
metadata: {name: m}
spec: {}
---
apiVersion: meshc/v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: meshc/v1
kind: AccessPolicy
metadata: {name: web, namespace: shop}
spec:
  service: web
  rules:
"""


def write_policy(root: Path, rules: int) -> None:
    body = "".join(
        f"  - from: [{{service: ghost-{i}}}]\n    to: {{methods: [GET], paths: ['/p{i}']}}\n"
        for i in range(rules)
    )
    (root / "policy.yaml").write_text(HEAD + body)


def timed_lint(root: Path, fmt: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "meshc"), "lint", str(root), "--format", fmt, "--no-cache"],
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=30_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="meshc-bench-text-") as tmp:
        root = Path(tmp)
        write_policy(root, args.rules)
        text, json = timed_lint(root, "text"), timed_lint(root, "json")
        ratio = text / json
        print(f"one policy, {args.rules} rules and findings: text {text:.2f} s, json {json:.2f} s")
        print(f"  text / json = {ratio:.2f}x (target <= 2x: {'PASS' if ratio <= 2 else 'MISS'})")


if __name__ == "__main__":
    main()
