"""`meshc lint`: check intent files and report findings."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from compiler.api import compile_tree, load_tree
from compiler.cli.common import SeverityType, in_scope, now_option, policy_root, resolve_now
from compiler.diagnostics import Severity

FORMATS = ("text", "json", "sarif", "github", "junit")


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--fail-on",
    type=SeverityType(),
    default="warning",
    show_default=True,
    help="Exit 1 when a finding at or above this severity is not suppressed.",
)
@click.option("--show-suppressed", is_flag=True, help="Also list suppressed findings (text).")
@now_option
def lint_command(
    paths: tuple[Path, ...], fmt: str, fail_on: Severity, show_suppressed: bool, now: datetime | None
) -> None:
    """Lint the policy root at PATH (default: .); file paths narrow what is reported."""
    root, narrow = policy_root(paths)
    when = resolve_now(now)
    compilation = compile_tree(load_tree(root), now=when)
    diagnostics = [d for d in compilation.diagnostics if in_scope(d.span.file, narrow)]
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for note in compilation.notes:
        err.print(f"note: {note}")
    lines = {f: r.lines for f, r in compilation.files.items()}
    if fmt == "text":
        console = Console(highlight=False, soft_wrap=True)
        if now is None and any(d.code in TIME_DEPENDENT for d in diagnostics):
            console.print(f"(evaluated at {when.isoformat()})")
        from compiler.report.text import render_text

        render_text(diagnostics, lines, console, show_suppressed=show_suppressed)
    else:
        from compiler.report import formats

        sys.stdout.write(formats.render(fmt, diagnostics, lines=lines, root=root, now=when))
    failing = [d for d in diagnostics if d.severity >= fail_on and d.suppressed_reason is None]
    sys.exit(1 if failing else 0)


TIME_DEPENDENT = frozenset({"MC401", "MC402"})
