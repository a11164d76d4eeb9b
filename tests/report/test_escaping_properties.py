"""Property tests: escaping holds for any text, not just the examples we thought of."""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.diagnostics import Diagnostic, Span
from compiler.graphview import dot_quote, mermaid_text
from compiler.report import formats
from compiler.report.github import escape_data, escape_property
from tests.helpers import NOW

TEXT = st.text(max_size=60)


@given(TEXT)
def test_github_escaping_is_reversible_and_separator_free(text: str) -> None:
    prop = escape_property(text)
    assert not set(prop) & {",", ":", "\n", "\r"}
    assert urllib.parse.unquote(prop) == text
    data = escape_data(text)
    assert "\n" not in data and "\r" not in data
    assert urllib.parse.unquote(data) == text


@settings(max_examples=60)
@given(TEXT, TEXT)
def test_junit_parses_whatever_the_message(message: str, hint: str) -> None:
    diag = Diagnostic("MC201", Span("f.yaml", 2, 3), message, hint)
    text = formats.render("junit", [diag], lines={}, root=Path("."), now=NOW)
    failure = ET.fromstring(text).find("testsuite/testcase/failure")
    assert failure is not None
    assert (failure.get("message") or "").startswith("f.yaml:2:3: error[MC201] ")


@given(TEXT)
def test_mermaid_label_has_no_raw_quote_or_newline(text: str) -> None:
    label = mermaid_text(text)
    inner = label[1:-1]
    assert label[0] == label[-1] == '"'
    assert not set(inner) & {'"', "\n", "\r", "|", "<", ">", "`"}
    # every '#' starts one of the entity codes we emit
    assert all(
        re.match(r"#(35|quot|amp|lt|gt|124|96);", inner[i:])
        for i, c in enumerate(inner)
        if c == "#"
    )


@given(TEXT)
def test_dot_quote_closes_only_at_the_end(text: str) -> None:
    quoted = dot_quote(text)
    body = quoted[1:-1]
    assert "\n" not in body and "\r" not in body
    assert re.fullmatch(r'(?:[^"\\]|\\.)*', body)  # every quote and backslash is escaped
