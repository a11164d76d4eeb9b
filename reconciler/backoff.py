"""Exponential backoff with full jitter, for a loop that keeps failing.

Full jitter (a uniform draw below the exponential cap) spreads the retries of many
replicas or many objects instead of having them retry in lockstep; the cap keeps a long
outage from pushing the next attempt past the regular interval.
"""

from __future__ import annotations

import random


def backoff_delay(
    failures: int,
    *,
    base: float = 1.0,
    cap: float = 300.0,
    draw: random.Random | None = None,
) -> float:
    """Seconds to wait after `failures` consecutive failures (0 after a success)."""
    if failures <= 0:
        return 0.0
    ceiling = min(cap, base * 2 ** min(failures - 1, 32))
    return (draw or random).uniform(0, ceiling)
