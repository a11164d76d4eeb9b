"""Text output clips very long source lines around the finding's column (a minified
500 KB line must not flood the terminal) and keeps the caret under the offending node."""

from __future__ import annotations

import io

from rich.console import Console

from compiler.diagnostics import Diagnostic, Span
from compiler.report.text import ELLIPSIS, LINE_WINDOW, render_text, source_excerpt
from tests.helpers import compile_files


def diag(col: int, end_col: int = 0, *, line: int = 1) -> Diagnostic:
    return Diagnostic("MC201", Span("f.yaml", line, col, line, end_col), "problem", "remedy")


def caret_target(shown: str, caret: str) -> str:
    """The characters of the shown line that the carets stand under."""
    start = len(caret) - len(caret.lstrip(" "))
    return shown[start : len(caret)]


def test_short_lines_are_shown_whole() -> None:
    text = "calls: [nowhere]"
    shown, caret = source_excerpt(text, diag(9, 16))
    assert shown == text
    assert caret == " " * 8 + "^" * 7
    assert caret_target(shown, caret) == "nowhere"


def test_long_line_is_clipped_around_the_column_with_the_caret_aligned() -> None:
    text = "a" * 250_000 + "calls: [nowhere]" + "b" * 250_000
    col = 250_000 + 9
    shown, caret = source_excerpt(text, diag(col, col + 7))
    assert shown.startswith(ELLIPSIS) and shown.endswith(ELLIPSIS)
    assert len(shown) == LINE_WINDOW + 2
    assert "calls: [nowhere]" in shown
    assert caret_target(shown, caret) == "nowhere"


def test_clipping_at_either_end_marks_only_the_cut_side() -> None:
    text = "x: " + "y" * 1000
    start_shown, start_caret = source_excerpt(text, diag(1, 2))
    assert not start_shown.startswith(ELLIPSIS) and start_shown.endswith(ELLIPSIS)
    assert start_caret == "^" and caret_target(start_shown, start_caret) == "x"
    end_shown, end_caret = source_excerpt(text, diag(len(text)))
    assert end_shown.startswith(ELLIPSIS) and not end_shown.endswith(ELLIPSIS)
    assert caret_target(end_shown, end_caret) == "y"
    assert len(end_caret) == len(end_shown)


def test_a_wide_span_is_cut_at_the_window_edge() -> None:
    text = "k: " + "v" * 5000
    shown, caret = source_excerpt(text, diag(4, 5004))
    assert caret.count("^") <= LINE_WINDOW
    assert len(caret) <= len(shown)


def test_render_text_on_a_real_finding_in_a_500kb_line() -> None:
    note = "n" * 500_000
    text = (
        "{apiVersion: meshc/v1, kind: AccessPolicy, metadata: {name: web, namespace: shop}, "
        f'spec: {{service: web, rules: [{{justification: "{note}", '
        "from: [{service: nowhere}]}]}}\n"
    )
    server = "apiVersion: meshc/v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
    server += "spec: {ports: [{name: http, port: 80, protocol: http}]}\n"
    compilation = compile_files({"policy.yaml": text, "web.yaml": server})
    found = [d for d in compilation.diagnostics if d.code == "MC203"]
    assert len(found) == 1 and found[0].span.col > 500_000
    out = io.StringIO()
    console = Console(file=out, width=120, no_color=True, highlight=False)
    lines = {name: result.lines for name, result in compilation.files.items()}
    render_text(found, lines, console)
    rendered = out.getvalue()
    assert len(rendered) < 2_000, len(rendered)
    assert "policy.yaml:1:500150: error[MC203] source service shop/nowhere" in rendered
    source_line, caret_line = [ln for ln in rendered.splitlines() if "    1 |" in ln or "^" in ln]
    shown, caret = source_line.split(" | ", 1)[1], caret_line.split(" | ", 1)[1]
    assert caret_target(shown, caret) == "nowhere"
