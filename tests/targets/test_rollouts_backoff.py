"""Rollout steps carried across revisions, and the backoff's bounds."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

from compiler.api import compile_tree, load_tree
from reconciler.backoff import backoff_delay
from reconciler.rollouts import carry_steps, schedules_of
from tests.helpers import REPO

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
STEPS = """  steps:
  - {weight: 10, pause: 1h}
  - {weight: 50, pause: 1h}
  - {weight: 100}
"""


def _tree(tmp_path: Path, steps: str | None) -> Path:
    root = tmp_path / f"policies-{abs(hash(steps))}"
    shutil.copytree(REPO / "policies", root)
    reviews = root / "reviews.yaml"
    text = reviews.read_text()
    if steps is not None:
        text = text.replace("  split: {v1: 90, v3: 10}\n", f"  canary: v3\n{steps}")
    reviews.write_text(text)
    return root


def test_steps_carry_restart_and_drop(tmp_path: Path) -> None:
    progressive = compile_tree(load_tree(_tree(tmp_path, STEPS)), now=NOW)
    assert progressive.ok, [d.message for d in progressive.diagnostics]
    schedules = schedules_of(progressive)
    assert list(schedules) == ["bookinfo/reviews"]
    same = carry_steps({"bookinfo/reviews": 1}, schedules, progressive)
    assert same.steps == {"bookinfo/reviews": 1} and not same.restarted

    changed_tree = _tree(tmp_path, STEPS.replace("weight: 50", "weight: 40"))
    changed = carry_steps(
        {"bookinfo/reviews": 1}, schedules, compile_tree(load_tree(changed_tree), now=NOW)
    )
    assert changed.steps == {} and changed.restarted == ("bookinfo/reviews",)

    fixed = compile_tree(load_tree(_tree(tmp_path, None)), now=NOW)
    gone = carry_steps({"bookinfo/reviews": 1, "bookinfo/old": 2}, schedules, fixed)
    assert gone.steps == {} and gone.dropped == ("bookinfo/old", "bookinfo/reviews")


def test_backoff_grows_and_stays_under_the_cap() -> None:
    draw = random.Random(7)
    assert backoff_delay(0, draw=draw) == 0.0
    for failures, ceiling in ((1, 1.0), (3, 4.0), (10, 300.0), (200, 300.0)):
        delays = [backoff_delay(failures, draw=draw) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range
