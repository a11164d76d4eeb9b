"""`meshd up --demo`: a scripted tour of the bookinfo example on real Envoys.

Each step is a `meshd call` (run in-process, through the same code) with what it should
show: a declared and allowed call answered, an undeclared call with no route, a declared
call the server's AccessPolicy refuses (403), the 90/10 split, and the A/B header sending
one user to v2. The tour exits 0 only when every step showed what it should.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.errors import MeshdError
from reconciler.up.call import Result, plan_call, report_lines, send, version_of
from reconciler.up.run import Echo, Running

Check = Callable[[Sequence[Result]], str | None]
"""Returns what went wrong, or None when the results are as expected."""


@dataclass(frozen=True, slots=True)
class Step:
    title: str
    caller: str
    callee: str
    path: str
    check: Check
    method: str = "GET"
    headers: tuple[str, ...] = ()
    count: int = 1

    @property
    def command(self) -> str:
        parts = ["meshd call", self.caller, self.callee, self.path]
        if self.method != "GET":
            parts.append(f"--method {self.method}")
        parts += [f"-H '{h}'" for h in self.headers]
        if self.count > 1:
            parts.append(f"-n {self.count}")
        return " ".join(parts)


def _all_answered(results: Sequence[Result]) -> str | None:
    bad = [r for r in results if not r.ok]
    return f"{len(bad)} of {len(results)} were not answered" if bad else None


def _denied(kind: str) -> Check:
    def check(results: Sequence[Result]) -> str | None:
        wrong = [r for r in results if r.kind != "denied" or not r.detail.startswith(kind)]
        return f"expected every request denied ({kind} …)" if wrong else None

    return check


def _split(results: Sequence[Result]) -> str | None:
    versions = Counter(version_of(r.detail) for r in results if r.ok)
    if sum(versions.values()) != len(results):
        return "some requests were not answered"
    v1, v3 = versions.get("reviews v1", 0), versions.get("reviews v3", 0)
    if v1 + v3 != len(results) or not v1 > v3 > 0:
        return f"expected most on reviews v1 and some on v3, got {dict(versions)}"
    return None


def _only_v2(results: Sequence[Result]) -> str | None:
    versions = {version_of(r.detail) for r in results if r.ok}
    return (
        None
        if versions == {"reviews v2"} and all(r.ok for r in results)
        else (f"expected only reviews v2, got {sorted(versions)}")
    )


BOOKINFO = (
    Step(
        "a declared call that the server allows",
        "productpage",
        "reviews",
        "/reviews/0",
        _all_answered,
    ),
    Step(
        "a call the caller does not declare: its sidecar has no route",
        "ratings",
        "productpage",
        "/",
        _denied("no route"),
    ),
    Step(
        "a declared call the server's AccessPolicy refuses (only GET is allowed)",
        "productpage",
        "reviews",
        "/reviews/0",
        _denied("403"),
        method="POST",
    ),
    Step(
        "the Rollout's 90/10 split between reviews v1 and v3",
        "productpage",
        "reviews",
        "/reviews/0",
        _split,
        count=200,
    ),
    Step(
        "the A/B rule: user jason goes to reviews v2",
        "productpage",
        "reviews",
        "/reviews/0",
        _only_v2,
        headers=("end-user: jason",),
        count=5,
    ),
)
REQUIRED = ("bookinfo/productpage", "bookinfo/reviews", "bookinfo/ratings")


async def tour(running: Running, echo: Echo) -> bool:
    """Run every step, print what each showed; True when all showed what they should."""
    state = running.published
    assert state is not None
    missing = [s for s in REQUIRED if s not in state.services]
    if missing:
        raise MeshdError(
            f"the tour walks through the bookinfo example and {', '.join(missing)} is missing "
            f"from {state.policy_root}; run `meshd up --demo policies/`, or `meshd up "
            f"{state.policy_root}` and `meshd call` for your own tree"
        )
    passed = 0
    for number, step in enumerate(BOOKINFO, 1):
        echo("")
        echo(f"{number}. {step.title}")
        echo(f"$ {step.command}")
        plan = plan_call(
            state,
            caller=step.caller,
            callee=step.callee,
            method=step.method,
            path=step.path,
            headers=step.headers,
            port=None,
        )
        results = await asyncio.to_thread(send, plan, step.count)
        for line in report_lines(plan, results):
            echo(f"  {line}")
        problem = step.check(results)
        echo(f"  -> {'as expected' if problem is None else 'NOT as expected: ' + problem}")
        passed += problem is None
    echo("")
    echo(f"tour: {passed} of {len(BOOKINFO)} steps as expected; stopping the mesh")
    return passed == len(BOOKINFO)
