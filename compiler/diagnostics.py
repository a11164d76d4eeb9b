"""The one diagnostic type every stage reports with.

Spans are 1-based (line and column) for users; the conversion from ruamel's 0-based
marks happens in exactly one place, `Span.from_marks`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so that `severity >= threshold` reads naturally."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r}; choose one of {choices}") from None


@dataclass(frozen=True, order=True, slots=True)
class Span:
    """A region of a source file; `file` is the path relative to the policy root."""

    file: str
    line: int = 1
    col: int = 1
    end_line: int = 0
    end_col: int = 0

    @classmethod
    def from_marks(cls, file: str, start: Any, end: Any | None = None) -> Span:
        """Build from ruamel marks (0-based line/column)."""
        if end is None:
            return cls.from_zero_based(file, start.line, start.column, start.line, start.column)
        return cls.from_zero_based(file, start.line, start.column, end.line, end.column)

    @classmethod
    def from_zero_based(cls, file: str, line: int, col: int, end_line: int, end_col: int) -> Span:
        """Build from 0-based positions (ruamel marks, the loader's packed spans)."""
        return cls(file, line + 1, col + 1, end_line + 1, end_col + 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Related:
    """Another place that explains a finding (the manifest whose pods a selector misses):
    reported beside the finding, never instead of it."""

    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding. Severity comes from the rule registry, not from the code that found it."""

    code: str
    span: Span
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR
    suppressed_reason: str | None = field(default=None, compare=False)
    related: tuple[Related, ...] = ()
    """Further locations, in the order a reader should look at them."""

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.span.file, self.span.line, self.span.col, self.code, self.message)
