"""Inline suppressions: `# meshc: ignore[MC401,MC402] reason: why this is fine`.

Composed YAML nodes carry no comments, so suppressions are found by scanning the source
lines. A suppression applies to findings on its own line, or — when it stands alone on a
line — to findings on the next line. A reason is mandatory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SUPPRESSION_MARKER = "meshc:"
"""Text every suppression contains: a line (or a file) without it holds none."""
_PATTERN = re.compile(r"#\s*meshc:\s*ignore\[([A-Za-z0-9_, ]*)\]\s*(.*)$")
_REASON = re.compile(r"^reason:\s*(\S.*)$")


@dataclass(frozen=True, slots=True)
class Suppression:
    line: int
    col: int
    codes: frozenset[str]
    reason: str | None
    applies_to: int


def scan_suppressions(lines: list[str]) -> list[Suppression]:
    found = []
    for index, text in enumerate(lines):
        if SUPPRESSION_MARKER not in text:
            continue
        match = _PATTERN.search(text)
        if not match:
            continue
        codes = frozenset(c.strip().upper() for c in match.group(1).split(",") if c.strip())
        reason_match = _REASON.match(match.group(2).strip())
        reason = reason_match.group(1).strip() if reason_match else None
        standalone = text[: match.start()].strip() == ""
        line = index + 1
        found.append(
            Suppression(line, match.start() + 1, codes, reason, line + 1 if standalone else line)
        )
    return found
