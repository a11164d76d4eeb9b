"""The one error type of the CA: a located problem with a remedy, never key material."""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import MeshdError

USAGE = 2
"""Exit code for bad input: a corrupt file, a wrong flag, a state we cannot read."""
REFUSED = 1
"""Exit code for a refused operation: a gate that does not hold, an expired CA."""


class CAError(MeshdError):
    """`<file>: <problem>; <remedy>`. Messages are built from names, paths and public
    facts only, so printing one can never leak a key."""

    def __init__(
        self, problem: str, *, path: Path | str | None = None, remedy: str = "", code: int = USAGE
    ) -> None:
        self.problem = problem
        self.path = str(path) if path is not None else None
        self.remedy = remedy
        self.code = code
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.path}: {self.problem}" if self.path else self.problem
        return f"{text}; {self.remedy}" if self.remedy else text

    def __repr__(self) -> str:
        return f"CAError({self.message!r})"
