"""Compiler-style text output: grouped by file, the source line, a caret under the column."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.markup import escape

from compiler.diagnostics import Diagnostic, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold blue"}


def render_text(
    diagnostics: list[Diagnostic],
    lines: Mapping[str, list[str]],
    console: Console,
    *,
    show_suppressed: bool = False,
) -> None:
    shown = [d for d in diagnostics if show_suppressed or d.suppressed_reason is None]
    current_file = None
    for diag in shown:
        if diag.span.file != current_file:
            current_file = diag.span.file
            console.print(f"[bold]{escape(current_file)}[/bold]")
        style = _STYLE[diag.severity]
        label = diag.severity.label
        tag = f"[{style}]{label}[{escape(diag.code)}][/{style}]"
        console.print(
            f"  {escape(str(diag.span))}: {tag} {escape(diag.message)}",
            highlight=False,
            soft_wrap=True,
        )
        source = lines.get(diag.span.file, [])
        if 1 <= diag.span.line <= len(source):
            excerpt, caret = source_excerpt(source[diag.span.line - 1].expandtabs(1), diag)
            number = str(diag.span.line)
            console.print(f"  {number:>5} | {escape(excerpt)}", highlight=False, soft_wrap=True)
            console.print(
                f"  {'':>5} | [{style}]{caret}[/{style}]", highlight=False, soft_wrap=True
            )
        if diag.hint:
            console.print(f"  {'':>5} = help: {escape(diag.hint)}", highlight=False, soft_wrap=True)
        if diag.suppressed_reason:
            console.print(
                f"  {'':>5} = suppressed: {escape(diag.suppressed_reason)}", highlight=False
            )
    counts = {
        s: sum(1 for d in shown if d.severity == s and not d.suppressed_reason) for s in Severity
    }
    suppressed = sum(1 for d in diagnostics if d.suppressed_reason)
    summary = (
        f"{counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]} warning(s), "
        f"{counts[Severity.INFO]} info"
    )
    if suppressed:
        summary += f", {suppressed} suppressed"
    console.print(summary, highlight=False)


LINE_WINDOW = 200
"""Source lines longer than this are shown clipped around the finding's column: a
minified 500 KB line must not flood the terminal."""
ELLIPSIS = "…"


def source_excerpt(text: str, diag: Diagnostic, *, window: int = LINE_WINDOW) -> tuple[str, str]:
    """The source line to show (clipped to `window` characters around the column, `…`
    marking what is cut) and the caret line under the span, aligned with it."""
    col = max(diag.span.col - 1, 0)
    width = 1
    if diag.span.end_line == diag.span.line and diag.span.end_col > diag.span.col:
        width = diag.span.end_col - diag.span.col
    start, end = 0, len(text)
    if len(text) > window:
        start = min(max(col - window // 2, 0), len(text) - window)
        end = start + window
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    offset = col - start
    marks = max(1, min(width, end - col))
    return prefix + text[start:end] + suffix, " " * (len(prefix) + offset) + "^" * marks
