"""Crash points for the resume tests.

`MESHD_CRASH_AT=<point>` makes the process die (like `kill -9`) when it reaches that
checkpoint, so a test can prove that every phase resumes after a crash between any two
writes. Unset in production: `checkpoint` is then a no-op.
"""

from __future__ import annotations

import os

ENV = "MESHD_CRASH_AT"
_die = os._exit
"""How the process dies; in-process tests replace it with raising a BaseException."""


def checkpoint(point: str) -> None:
    target = os.environ.get(ENV)
    if target and (target == point or (target.endswith("*") and point.startswith(target[:-1]))):
        _die(137)
