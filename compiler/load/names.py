"""File names and user-typed text made safe to show: one line, valid UTF-8.

A file name need not be UTF-8 (Python hands it over with surrogate escapes) and may hold
a newline; either would break a one-line message, a JSON report or a YAML annotation.
Every name the loader and the plan reader hand on goes through `printable` first.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` safe for a one-line message or a report: control characters and bytes that
    are not UTF-8 (surrogate escapes from argv or the file system) written as escapes,
    the way `git` quotes odd path names."""
    if text.isprintable():
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        raw = text.encode("utf-8", "backslashreplace")
    decoded = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else _escape(c) for c in decoded)


def _escape(char: str) -> str:
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
