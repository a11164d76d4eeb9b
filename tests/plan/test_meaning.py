"""The meaning diff and risk flags, over in-memory trees (no Git needed)."""

from __future__ import annotations

import itertools
from typing import Any

from compiler.plan.engine import Plan, Planner, build_plan
from compiler.plan.report import plan_document
from compiler.plan.source import Revision
from tests.helpers import NOW, REPO, tree

BOOKINFO = {p.name: p.read_text() for p in sorted((REPO / "policies").glob("*.yaml"))}


def plan_of(
    base: dict[str, str],
    head: dict[str, str],
    *,
    state: dict[str, int] | None = None,
    ca_status: Any | None = None,
) -> Plan:
    planner = Planner()
    sides = [
        planner.compile_side(
            Revision(label, None, None), tree(files), now=NOW, rollout_state=state or {}
        )
        for label, files in (("base", base), ("head", head))
    ]
    return build_plan(sides[0], sides[1], now=NOW, ca_status=ca_status)


def changed(**edits: tuple[str, str]) -> dict[str, str]:
    files = dict(BOOKINFO)
    for name, (old, new) in edits.items():
        file = name.replace("_", ".").replace(".yaml", "") + ".yaml"
        assert old in files[file], (file, old)
        files[file] = files[file].replace(old, new, 1)
    return files


def texts(plan: Plan, section: str, side: str = "added") -> list[str]:
    doc = plan_document(plan)
    return [e["text"] for e in doc["meaning"][section][side]]


def flags(plan: Plan) -> list[tuple[str, str]]:
    return [(f.code, f.message) for f in plan.risks]


def test_no_change_is_empty() -> None:
    plan = plan_of(BOOKINFO, BOOKINFO)
    assert plan.meaning is not None and plan.meaning.empty and not plan.changed and not plan.risks


def test_effective_edge_needs_a_declared_call_and_an_allow() -> None:
    head = changed(
        details_yaml=(
            "  - from: [{service: productpage}]",
            "  - from: [{service: productpage}, {service: reviews}]",
        ),
        reviews_yaml=("calls: [ratings]", "calls: [ratings, details]"),
    )
    plan = plan_of(BOOKINFO, head)
    assert texts(plan, "allowed") == ["reviews → details GET /details/*"]
    assert texts(plan, "effective") == ["reviews → details GET /details/*"]
    assert [c for c, _ in flags(plan)] == ["access-widened"]


def test_narrowed_access_is_reported_as_narrowed() -> None:
    """A rule relabelled to a narrower path loses requests and gains none: no widening
    (the edges alone read as one new and one removed edge)."""
    head = changed(ratings_yaml=('paths: ["/ratings/*"]', 'paths: ["/ratings/v2/*"]'))
    plan = plan_of(BOOKINFO, head)
    assert texts(plan, "allowed", "removed") == ["reviews → ratings GET /ratings/*"]
    assert texts(plan, "effective", "removed") == ["reviews → ratings GET /ratings/*"]
    assert texts(plan, "effective") == ["reviews → ratings GET /ratings/v2/*"]
    assert [(f.code, f.severity, f.message) for f in plan.risks] == [
        (
            "access-narrowed",
            "warning",  # reviews declares calls: [ratings]
            "bookinfo/reviews → bookinfo/ratings: GET /ratings/x (port 9080) no longer allowed "
            "(a declared call: it will break)",
        )
    ]


def test_narrowing_methods_is_not_widening() -> None:
    """The issue's reproduction: GET, POST and DELETE narrowed to GET."""
    head = changed(ratings_yaml=("methods: [GET]", "methods: [GET, POST, DELETE]"))
    plan = plan_of(head, BOOKINFO)
    # one line per caller, port and direction, with one lost request as the example
    assert [(f.code, f.message) for f in plan.risks] == [
        (
            "access-narrowed",
            "bookinfo/reviews → bookinfo/ratings: DELETE /ratings/x (port 9080) no longer "
            "allowed (a declared call: it will break)",
        )
    ]


def test_wildcard_identity_is_flagged() -> None:
    head = changed(
        ratings_yaml=(
            "  - from: [{service: reviews}]",
            "  - from: [{service: '*'}]\n    justification: health checks from every team",
        )
    )
    plan = plan_of(BOOKINFO, head)
    codes = {c for c, _ in flags(plan)}
    assert "wildcard-identity" in codes and "access-widened" in codes
    assert any("ratings now admits any mesh identity" in m for _, m in flags(plan))


def test_namespace_opened_to_another_namespace() -> None:
    head = changed(
        ratings_yaml=(
            "  - from: [{service: reviews}]",
            "  - from: [{service: reviews}, {namespace: shop}]",
        )
    )
    plan = plan_of(BOOKINFO, head)
    messages = [m for c, m in flags(plan) if c == "namespace-opened"]
    assert messages == [
        "bookinfo/ratings is opened to every workload of another namespace, shop: "
        "namespace:shop → ratings GET /ratings/*"
    ]


def test_mtls_weakened_and_default_deny_removed() -> None:
    head = changed(
        mesh_yaml=(
            "    mode: strict\n  defaultAction: deny",
            "    mode: permissive\n    until: 2026-12-01\n  defaultAction: allow",
        )
    )
    plan = plan_of(BOOKINFO, head)
    codes = [c for c, _ in flags(plan)]
    assert "mtls-weakened" in codes and "default-deny-removed" in codes
    mesh = {(c.field, c.before, c.after) for c in plan.meaning.mesh}  # type: ignore[union-attr]
    assert ("mtls.mode", "strict", "permissive") in mesh
    assert ("defaultAction", "deny", "allow") in mesh


def test_shadow_mode_widens_access() -> None:
    head = changed(
        reviews_yaml=(
            "  service: reviews\n  rules:",
            "  service: reviews\n  mode: shadow\n  rules:",
        )
    )
    plan = plan_of(BOOKINFO, head)
    assert "* (any mesh identity) → reviews * (shadow)" in texts(plan, "allowed")
    assert "access-widened" in {c for c, _ in flags(plan)}


def test_resilience_changes_are_field_level() -> None:
    head = changed(
        ratings_yaml=(
            "  timeout: 2s\n  retries: {attempts: 3,",
            "  timeout: 3s\n  retries: {attempts: 2,",
        )
    )
    plan = plan_of(BOOKINFO, head)
    assert [c.text() for c in plan.meaning.resilience] == [  # type: ignore[union-attr]
        "bookinfo/ratings: retries.attempts 3 → 2",
        "bookinfo/ratings: timeout 2s → 3s",
    ]
    # fewer attempts is no risk; a longer timeout holds callers longer
    assert [(flag.code, flag.message) for flag in plan.risks] == [
        ("resilience-loosened", "ratings: timeout 2s → 3s")
    ]


def test_traffic_without_rollout_and_with_steps() -> None:
    steps = (
        "  steps: [{weight: 20, pause: 5m}, {weight: 60, pause: 5m}, {weight: 100}]\n  canary: v3\n"
    )
    head = changed(reviews_yaml=("  split: {v1: 90, v3: 10}\n", steps))
    assert [c.text(qualify=False) for c in plan_of(BOOKINFO, head).meaning.traffic] == [  # type: ignore[union-attr]
        "reviews: v1 90%, v3 10% → v1 80%, v3 20%"
    ]
    later = plan_of(BOOKINFO, head, state={"bookinfo/reviews": 1})
    assert [c.text(qualify=False) for c in later.meaning.traffic] == [  # type: ignore[union-attr]
        "reviews: v1 90%, v3 10% → v1 40%, v3 60%"
    ]
    no_rollout = {
        k: v.split("---\napiVersion: meshc/v1\nkind: Rollout")[0] for k, v in BOOKINFO.items()
    }
    plan = plan_of(no_rollout, BOOKINFO)
    assert [c.text(qualify=False) for c in plan.meaning.traffic] == [  # type: ignore[union-attr]
        "reviews: unsplit → v1 90%, v3 10%; A/B [none] → [header end-user exact 'jason' → v2]"
    ]


_ANCHOR_A = "sha256:" + ":".join(["AA"] * 32)
_ANCHOR_B = "sha256:" + ":".join(["BB"] * 32)


def _ca(*anchors: tuple[str, str], issuer: str) -> tuple[str, str]:
    listed = "".join(f"      - {{name: {n}, fingerprint: '{f}'}}\n" for n, f in anchors)
    return (
        "  monitoringNamespace: monitoring",
        f"  monitoringNamespace: monitoring\n  ca:\n    issuer: {issuer}\n    anchors:\n{listed}",
    )


def test_trust_anchor_removal_is_flagged_and_refused_with_ca_status() -> None:
    base = changed(mesh_yaml=_ca(("old", _ANCHOR_A), ("new", _ANCHOR_B), issuer="new"))
    head = changed(mesh_yaml=_ca(("new", _ANCHOR_B), issuer="new"))
    plan = plan_of(base, head)
    assert [c.text() for c in plan.meaning.trust] == [f"ca: anchor old {_ANCHOR_A} → (unset)"]  # type: ignore[union-attr]
    assert [c for c, _ in flags(plan)] == ["trust-anchor-removed"]
    assert not plan.failed
    status = {
        "version": 1,
        "roots": [
            {
                "fingerprint": _ANCHOR_A.lower(),
                "liveLeaves": 4,
                "maxLeafNotAfter": "2026-11-26T12:00:00Z",
            },
            {"fingerprint": _ANCHOR_B, "liveLeaves": 9, "maxLeafNotAfter": "2026-11-26T12:00:00Z"},
        ],
    }
    refused = plan_of(base, head, ca_status=status)
    assert refused.failed
    [reason] = refused.refusals
    assert reason.startswith(f"root {_ANCHOR_A}: 4 live leaf certificates still chain to it")
    safe = plan_of(
        base,
        head,
        ca_status={
            "version": 1,
            "roots": [
                {"fingerprint": _ANCHOR_A, "liveLeaves": 0, "maxLeafNotAfter": None},
                {
                    "fingerprint": _ANCHOR_B,
                    "liveLeaves": 9,
                    "maxLeafNotAfter": "2026-11-26T12:00:00Z",
                },
            ],
        },
    )
    assert not safe.failed and safe.refusals == ()


def test_plan_document_is_deterministic() -> None:
    import json

    head = changed(reviews_yaml=("split: {v1: 90, v3: 10}", "split: {v1: 50, v3: 50}"))
    first = json.dumps(plan_document(plan_of(BOOKINFO, head)))
    second = json.dumps(plan_document(plan_of(BOOKINFO, head)))
    assert first == second


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):  # member names, not data keys (version names under shares)
        return set(value) | {k for n, v in value.items() if n != "shares" for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_docs_describe_every_json_member_and_risk_code() -> None:
    from compiler.plan.risk import RISK_CODES

    docs = (REPO / "docs" / "plan-json.md").read_text()
    head = changed(
        reviews_yaml=("split: {v1: 90, v3: 10}", "split: {v1: 50, v3: 50}"),
        ratings_yaml=("  timeout: 2s", "  timeout: 3s"),
    )
    document = plan_document(plan_of(BOOKINFO, head))
    assert document["version"] == 1 and '"version": 1' in docs
    undocumented = sorted(k for k in _keys(document) if f'"{k}"' not in docs)
    assert undocumented == []
    assert [code for code in RISK_CODES if f"`{code}`" not in docs] == []


def test_a_service_opened_to_another_namespace_is_flagged() -> None:
    shop = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
  calls: [bookinfo/ratings]
"""
    base = {**BOOKINFO, "shop.yaml": shop.replace("  calls: [bookinfo/ratings]\n", "")}
    head = changed(
        ratings_yaml=(
            "  - from: [{service: reviews}]",
            "  - from: [{service: reviews}, {service: shop/web}]",
        )
    )
    plan = plan_of(base, {**head, "shop.yaml": shop})
    assert plan.meaning is not None and plan.meaning.qualify
    assert texts(plan, "allowed") == ["shop/web → bookinfo/ratings GET /ratings/*"]
    assert texts(plan, "effective") == ["shop/web → bookinfo/ratings GET /ratings/*"]
    assert (
        "namespace-opened",
        "namespace bookinfo is opened to namespace shop: "
        "shop/web → bookinfo/ratings GET /ratings/*",
    ) in flags(plan)


def test_a_shared_planner_gives_the_same_plans_as_fresh_ones() -> None:
    """The per-service meaning cache must never change a result: a sequence of changes
    (identity, new service, access, default action) planned through one warm planner
    equals each plan made with a fresh planner."""
    import json

    from compiler.plan.report import plan_document as document

    revisions = [
        BOOKINFO,
        changed(reviews_yaml=("identity: bookinfo-reviews", "identity: reviews-v2")),
        {
            **BOOKINFO,
            "extra.yaml": BOOKINFO["ratings.yaml"]
            .replace("name: ratings", "name: extra")
            .replace("service: ratings", "service: extra"),
        },
        changed(
            ratings_yaml=(
                "  - from: [{service: reviews}]",
                "  - from: [{service: reviews}, {service: productpage}]",
            )
        ),
        changed(mesh_yaml=("defaultAction: deny", "defaultAction: allow")),
        BOOKINFO,
    ]
    warm = Planner()

    def plan_with(planner: Planner, base: dict[str, str], head: dict[str, str]) -> str:
        sides = [
            planner.compile_side(
                Revision(label, None, None), tree(files), now=NOW, rollout_state={}
            )
            for label, files in (("base", base), ("head", head))
        ]
        return json.dumps(document(build_plan(sides[0], sides[1], now=NOW)))

    for before, after in itertools.pairwise(revisions):
        fresh = plan_with(Planner(), before, after)
        assert json.loads(fresh)["ok"] and json.loads(fresh)["changed"]
        assert plan_with(warm, before, after) == fresh
