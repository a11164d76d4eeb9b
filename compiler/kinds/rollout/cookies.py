"""The one regex a Rollout's cookie matches become (shared by the lowering and MC512).

Istio's route match has no cookie field: the lowering matches the `cookie` header, and
lint checks that very regex against RE2's limits, so both read it from here.
"""

from __future__ import annotations

import itertools
import re

from compiler.kinds.rollout.model import StringMatch


def _cookie_value(match: StringMatch) -> str:
    if match.exact is not None:
        return re.escape(match.exact)
    if match.prefix is not None:
        return re.escape(match.prefix) + "[^;]*"
    pattern = (match.regex or "").removeprefix("^").removesuffix("$")
    return f"(?:{pattern})"


def cookie_regex(cookies: dict[str, StringMatch]) -> str:
    """Istio has no cookie match: the `cookie` header must contain every named cookie.

    RE2 has no lookahead, so several cookies are matched in any order by alternating
    over their orders (a handful of cookies at most in practice).
    """
    parts = [f"{re.escape(name)}={_cookie_value(match)}" for name, match in sorted(cookies.items())]
    orders = [
        "(?:^|.*;\\s*)" + "(?:;.*;\\s*|;\\s*)".join(order) + "(?:;.*)?$"
        for order in itertools.permutations(parts)
    ]
    return orders[0] if len(orders) == 1 else "(?:" + "|".join(orders) + ")"
