"""The risks a reviewer needs besides access: a canary moved too far at once, retries
widened where non-idempotent requests arrive, timeouts and circuit breakers loosened, and
head's own lint warnings in every format."""

from __future__ import annotations

from compiler.plan.engine import Plan
from compiler.plan.markdown import render_markdown
from compiler.plan.report import plan_document
from compiler.plan.text import render_text
from tests.plan.test_meaning import BOOKINFO, changed, plan_of


def flags(plan: Plan) -> list[tuple[str, str]]:
    return [(flag.code, flag.subject) for flag in plan.risks]


PRODUCTPAGE_RETRIES = """\
---
apiVersion: meshc/v1
kind: Resilience
metadata: {name: productpage, namespace: bookinfo}
spec:
  service: productpage
  retries: {attempts: 3, retryOn: [5xx]}
"""


def test_a_canary_flipped_in_one_change_is_flagged() -> None:
    base = changed(reviews_yaml=("split: {v1: 90, v3: 10}", "split: {v1: 80, v3: 20}"))
    head = changed(reviews_yaml=("split: {v1: 90, v3: 10}", "split: {v1: 20, v3: 80}"))
    plan = plan_of(base, head)
    assert flags(plan) == [("traffic-shifted", "bookinfo/reviews")]
    assert plan.risks[0].message == (
        "reviews: v3 20% → 80% in one change (more than 25 points at once)"
    )
    small = changed(reviews_yaml=("split: {v1: 90, v3: 10}", "split: {v1: 60, v3: 40}"))
    assert flags(plan_of(base, small)) == []  # 20 points: a canary step


def test_retries_enabled_where_post_arrives_are_flagged() -> None:
    head = dict(BOOKINFO)
    head["productpage.yaml"] = BOOKINFO["productpage.yaml"] + PRODUCTPAGE_RETRIES
    plan = plan_of(BOOKINFO, head)
    assert flags(plan) == [("retries-widened", "bookinfo/productpage")] * 2  # attempts, retryOn
    assert all("POST reach it" in flag.message for flag in plan.risks)
    # ratings only accepts GET: more retries there are no such risk
    more = changed(ratings_yaml=("retries: {attempts: 3,", "retries: {attempts: 5,"))
    assert "retries-widened" not in [code for code, _ in flags(plan_of(BOOKINFO, more))]


def test_a_removed_circuit_breaker_limit_is_flagged() -> None:
    head = changed(ratings_yaml=("    maxConnections: 100\n", ""))
    plan = plan_of(BOOKINFO, head)
    assert [(f.code, f.message) for f in plan.risks] == [
        ("resilience-loosened", "ratings: circuitBreaker.maxConnections 100 → (removed)")
    ]


def test_heads_lint_warnings_are_shown_in_every_format() -> None:
    head = changed(mesh_yaml=("mode: strict", "mode: permissive\n    until: 2027-01-01T00:00:00Z"))
    plan = plan_of(BOOKINFO, head)
    assert plan.head.compiles and plan.head.findings, "the change must draw a warning"
    code = plan.head.findings[0].code
    document = plan_document(plan)
    assert f"[{code}]" in render_text(document)
    assert f"[{code}]" in "".join(render_markdown(document))
