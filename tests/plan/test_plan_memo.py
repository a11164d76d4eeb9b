"""Re-plan memos: resource diffs by object identity equal fresh diffs, every time."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from compiler.artifacts import Artifacts
from compiler.plan.engine import Planner, build_plan
from compiler.plan.mask import MASKED, MASKED_CHANGED
from compiler.plan.report import plan_document
from compiler.plan.resources import DiffCache, diff_artifacts
from compiler.plan.source import Revision
from tests.helpers import NOW, REPO, tree

BOOKINFO = {p.name: p.read_text() for p in sorted((REPO / "policies").glob("*.yaml"))}


def policy(name: str, *, token: str = "t0k", hosts: tuple[str, ...] = ("a",)) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"rules": [{"to": [{"hosts": list(hosts)}]}], "auth": {"apiToken": token}},
    }


def fresh(base: Artifacts, head: Artifacts) -> list[tuple[str, str, str]]:
    """The diff computed from deep copies: no identity any memo could have seen."""
    copies = Artifacts(copy.deepcopy(base.objects)), Artifacts(copy.deepcopy(head.objects))
    return [(str(c.key), c.action, c.diff) for c in diff_artifacts(*copies)]


def test_memoised_diffs_equal_fresh_ones_across_replans() -> None:
    """Base fixed, each head changes one more object; the reused before-objects and
    the secret-like values must diff exactly as a fresh comparison does."""
    base_objects = [policy(f"p{i}") for i in range(6)]
    base = Artifacts.of_kubernetes(base_objects)
    cache = DiffCache()
    heads = {obj["metadata"]["name"]: obj for obj in base_objects}  # shared when unchanged
    seen: dict[str, str] = {}
    for step in range(1, 6):
        heads = dict(heads)
        heads[f"p{step}"] = policy(f"p{step}", hosts=("a", f"h{step}"), token=f"new{step}")
        if step == 3:
            heads["p1"] = policy("p1", hosts=("a", "again"))  # same before-object, new after
        if step == 4:
            del heads["p0"]
            heads["extra"] = policy("extra")
        head = Artifacts.of_kubernetes(heads.values())
        memoised = [(str(c.key), c.action, c.diff) for c in diff_artifacts(base, head, cache)]
        assert memoised == fresh(base, head), f"step {step}"
        for key, _action, text in memoised:
            assert "t0k" not in text and "new" not in text, f"step {step}: a secret leaked"
            seen[key] = text
    p2 = seen["AuthorizationPolicy.security.istio.io/ns/p2"]
    assert f"-    apiToken: '{MASKED}'\n" in p2 and f"+    apiToken: '{MASKED_CHANGED}'\n" in p2
    p1 = seen["AuthorizationPolicy.security.istio.io/ns/p1"]
    assert "+      - again\n" in p1 and "apiToken" not in p1  # unchanged secret: no line


def test_a_seen_pair_is_not_diffed_again() -> None:
    base = Artifacts.of_kubernetes([policy("p0"), policy("p1")])
    after = policy("p1", hosts=("b",))
    cache = DiffCache()
    first = diff_artifacts(
        base, Artifacts.of_kubernetes([*list(base.objects.values())[:1], after]), cache
    )
    again = diff_artifacts(base, Artifacts.of_kubernetes([policy("p0"), after]), cache)
    assert [c.diff for c in first] == [c.diff for c in again]
    assert first[0].diff is again[0].diff, "the (before, after) pair was diffed twice"
    assert "-      - a\n+      - b\n" in again[0].diff
    # an equal object that is a different dict: compared (equal), not reported
    assert [c.action for c in again] == ["changed"]


def test_equal_content_in_new_objects_is_still_diffed_correctly() -> None:
    """The memo is keyed by identity and keeps its objects alive: a new object with an
    old object's content never inherits another pair's result."""
    base = Artifacts.of_kubernetes([policy("p0")])
    cache = DiffCache()
    for hosts in (("x",), ("a",), ("y",), ("a",)):
        head = Artifacts.of_kubernetes([policy("p0", hosts=hosts)])
        got = [(str(c.key), c.action, c.diff) for c in diff_artifacts(base, head, cache)]
        assert got == fresh(base, head), hosts
        assert bool(got) == (hosts != ("a",)), hosts


def test_diff_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler.plan import resources

    monkeypatch.setattr(resources, "_PAIR_CACHE_SIZE", 20)
    base = Artifacts.of_kubernetes([policy("p0")])
    cache = DiffCache()
    heads = [Artifacts.of_kubernetes([policy("p0", hosts=(str(i),))]) for i in range(50)]
    for head in heads:
        diff_artifacts(base, head, cache)
    assert len(cache.pairs) == 20
    assert len(cache.texts) == 1  # the base object, masked once
    # the evicted oldest pair is diffed again, correctly
    assert [c.diff for c in diff_artifacts(base, heads[0], cache)] == [
        d for _, _, d in fresh(base, heads[0])
    ]


def _edits(step: int) -> dict[str, str]:
    """Bookinfo with `step` cumulative edits (like the re-plan benchmark's heads)."""
    changes = [
        (
            "details.yaml",
            "  - from: [{service: productpage}]",
            "  - from: [{service: productpage}, {service: reviews}]",
        ),
        ("reviews.yaml", "split: {v1: 90, v3: 10}", "split: {v1: 50, v3: 50}"),
        (
            "ratings.yaml",
            "  - from: [{service: reviews}]",
            "  - from: [{service: reviews}, {service: details}]",
        ),
    ]
    files = dict(BOOKINFO)
    for name, old, new in changes[:step]:
        assert old in files[name], (name, old)
        files[name] = files[name].replace(old, new, 1)
    return files


def test_warm_planner_replans_equal_cold_plans() -> None:
    planner = Planner()
    base_tree = tree(BOOKINFO)
    for step in range(4):
        documents = []
        for warm in (planner, Planner()):
            sides = [
                warm.compile_side(Revision(label, None, None), t, now=NOW, rollout_state={})
                for label, t in (("base", base_tree), ("head", tree(_edits(step))))
            ]
            plan = build_plan(*sides, now=NOW, diffs=warm.diffs)
            documents.append(json.dumps(plan_document(plan), sort_keys=True))
        assert documents[0] == documents[1], f"step {step}"
        assert (step > 0) == bool(json.loads(documents[0])["resources"]), f"step {step}"
