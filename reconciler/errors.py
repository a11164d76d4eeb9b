"""The base of every error `meshd` reports to a user (one line, an exit code, no traceback)."""

from __future__ import annotations


class MeshdError(Exception):
    """Subclasses set `message` (shaped `subject: problem; remedy`) and `code` (1 or 2)."""

    code: int = 2

    @property
    def message(self) -> str:
        return str(self)
