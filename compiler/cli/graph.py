"""`meshc graph`: who may call whom (allowed) and who actually can (effective)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from compiler import graphview
from compiler.api import Compilation, compile_tree, load_tree
from compiler.cli.common import (
    allow_empty_option,
    has_meshc_documents,
    now_option,
    policy_root,
    refuse_empty,
    resolve_now,
)
from compiler.diagnostics import Diagnostic, Severity
from compiler.lint.registry import REGISTRY
from compiler.report.common import summarize

ALLOWED_HEADING = "Allowed graph (what servers permit)"
EFFECTIVE_HEADING = "Effective graph (declared calls and what the servers decide)"
_SHOWN_ERRORS = 20


@click.command("graph")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "dot", "mermaid"]),
    default="table",
    show_default=True,
)
@click.option("--effective", "view", flag_value="effective", help="Only declared calls.")
@click.option("--allowed", "view", flag_value="allowed", help="Only what servers allow.")
@click.option("--both", "view", flag_value="both", default=True, help="Both graphs (default).")
@allow_empty_option
@now_option
def graph_command(
    path: Path | None, fmt: str, view: str, allow_empty: bool, now: datetime | None
) -> None:
    """Print the access graphs of the policy root at PATH (default: .).

    Denied declared calls are shown with the reason (dashed red in dot and mermaid).
    A tree whose documents do not load or validate is refused (exit 2): its graph would
    silently miss edges. Lint errors about the graph itself (say, a declared call the
    server denies) do not stop it: showing them is what the graph is for.
    """
    root, _ = policy_root((path,) if path is not None else ())
    compilation = compile_tree(load_tree(root), now=resolve_now(now))
    if not allow_empty and not has_meshc_documents(compilation):
        refuse_empty("graph", root)
    broken = [d for d in compilation.blocking(Severity.ERROR) if _is_load_error(d.code)]
    if broken:
        _refuse(compilation, root, broken)
    lint_errors = len(compilation.blocking(Severity.ERROR))
    if lint_errors:
        click.echo(f"note: {lint_errors} lint error(s); details: meshc lint {root}", err=True)
    sys.stdout.write(render_graph(compilation, fmt=fmt, view=view))


def _is_load_error(code: str) -> bool:
    """Findings of the loader and validator (rules without a check function: MC0xx, MC1xx).

    A suppression without a reason (MC001) is a lint matter, not a broken document.
    """
    if code == "MC001":
        return False
    registered = REGISTRY.get(code)
    return registered is None or registered.check is None


def render_graph(compilation: Compilation, *, fmt: str, view: str) -> str:
    model = compilation.model
    if fmt == "table":
        sections: list[tuple[str, list[graphview.ViewEdge]]] = []
        if view in ("allowed", "both"):
            sections.append((ALLOWED_HEADING, graphview.allowed_view(model)))
        if view in ("effective", "both"):
            sections.append((EFFECTIVE_HEADING, graphview.effective_view(model)))
        return graphview.table(sections)
    if view == "allowed":
        edges = graphview.allowed_view(model)
    elif view == "effective":
        edges = graphview.effective_view(model)
    else:
        edges = graphview.combined_view(model)
    if fmt == "dot":
        return graphview.dot(graphview.annotated(edges))
    return graphview.mermaid(graphview.annotated(edges))


def _refuse(compilation: Compilation, root: Path, errors: list[Diagnostic]) -> None:
    """No graph from a tree that does not load: say why, briefly, and exit 2."""
    summary = summarize(compilation.diagnostics)
    click.echo(
        f"meshc graph: {root}: the policy tree does not compile "
        f"({summary.errors} error(s), {summary.warnings} warning(s)); "
        f"fix the errors first (details: meshc lint {root})",
        err=True,
    )
    for diag in errors[:_SHOWN_ERRORS]:
        click.echo(f"  {diag.span}: error[{diag.code}] {diag.message}", err=True)
    if len(errors) > _SHOWN_ERRORS:
        click.echo(f"  ... and {len(errors) - _SHOWN_ERRORS} more", err=True)
    sys.exit(2)
