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
    """Findings grouped by file, each with its source line and a caret. On a terminal
    through rich (colour); otherwise as plain writes: rich renders line by line, which
    made a 30,000-finding report ten times slower than its JSON."""
    out = _Rich(console) if console.is_terminal else _Plain(console)
    shown = [d for d in diagnostics if show_suppressed or d.suppressed_reason is None]
    current_file = None
    for diag in shown:
        if diag.span.file != current_file:
            current_file = diag.span.file
            out.line(current_file, style="bold")
        style = _STYLE[diag.severity]
        out.parts(
            ("  " + str(diag.span) + ": ", None),
            (f"{diag.severity.label}[{diag.code}]", style),
            (" " + diag.message, None),
        )
        source = lines.get(diag.span.file, [])
        if 1 <= diag.span.line <= len(source):
            excerpt, caret = source_excerpt(source[diag.span.line - 1].expandtabs(1), diag)
            out.line(f"  {diag.span.line:>5} | {excerpt}")
            out.parts((f"  {'':>5} | ", None), (caret, style))
        for related in diag.related:
            out.line(f"  {'':>5} = note: {related.span}: {related.message}")
        if diag.hint:
            out.line(f"  {'':>5} = help: {diag.hint}")
        if diag.suppressed_reason:
            out.line(f"  {'':>5} = suppressed: {diag.suppressed_reason}")
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
    out.line(summary)
    out.flush()


class _Rich:
    """Styled output on a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def line(self, text: str, *, style: str | None = None) -> None:
        self.parts((text, style))

    def parts(self, *pieces: tuple[str, str | None]) -> None:
        markup = "".join(
            escape(text) if style is None else f"[{style}]{escape(text)}[/{style}]"
            for text, style in pieces
        )
        self.console.print(markup, highlight=False, soft_wrap=True)

    def flush(self) -> None:
        """Rich prints as it goes."""


class _Plain:
    """Unstyled output, collected and written once."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.buffer: list[str] = []

    def line(self, text: str, *, style: str | None = None) -> None:
        self.buffer.append(text)

    def parts(self, *pieces: tuple[str, str | None]) -> None:
        self.buffer.append("".join(text for text, _ in pieces))

    def flush(self) -> None:
        self.console.file.write("\n".join(self.buffer) + "\n")
        self.console.file.flush()


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
