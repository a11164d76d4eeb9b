"""The resource diff over hand-built Artifacts, secret masking, and markdown splitting."""

from __future__ import annotations

import re
from typing import Any

import pytest

from compiler.artifacts import ArtifactKey, Artifacts
from compiler.plan.markdown import GITHUB_COMMENT_LIMIT, pack, render_markdown
from compiler.plan.mask import MASKED, MASKED_CHANGED, mask_text
from compiler.plan.resources import diff_artifacts

_LABEL = "EC " + "PRIVATE KEY"  # built at runtime: no key-shaped literal in the repository
_BODY = "ZmFrZS1rZXktYm9keS1mb3ItbWFza2luZy10ZXN0cw=="
PRIVATE_KEY = f"-----BEGIN {_LABEL}-----\n{_BODY}\n-----END {_LABEL}-----\n"


def obj(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns"},
        "spec": spec,
    }


def test_created_changed_deleted_in_key_order() -> None:
    base = Artifacts.of_kubernetes(
        [obj("A", "kept", x=1), obj("A", "gone", x=1), obj("B", "edited", timeout="2s")]
    )
    head = Artifacts.of_kubernetes(
        [obj("A", "kept", x=1), obj("B", "edited", timeout="3s"), obj("A", "new", x=2)]
    )
    changes = diff_artifacts(base, head)
    assert [(c.action, str(c.key)) for c in changes] == [
        ("deleted", "A.example.io/ns/gone"),
        ("created", "A.example.io/ns/new"),
        ("changed", "B.example.io/ns/edited"),
    ]
    edited = changes[2].diff
    assert edited.startswith("--- base/B.example.io/ns/edited\n+++ head/B.example.io/ns/edited\n")
    assert "-  timeout: 2s\n+  timeout: 3s\n" in edited
    assert changes[1].diff.startswith("--- /dev/null\n+++ head/A.example.io/ns/new\n")
    assert all(line.startswith(("+", "@")) for line in changes[1].diff.splitlines()[2:])
    assert changes[0].diff.splitlines()[1] == "+++ /dev/null"


def test_secret_like_values_are_masked_and_changes_still_show() -> None:
    base = Artifacts.of_kubernetes(
        [
            obj(
                "S",
                "creds",
                password="hunter2",
                apiToken="t0k",
                tls={"ca-key.pem": PRIVATE_KEY},
                note=f"inline {PRIVATE_KEY}",
                plain="visible",
            )
        ]
    )
    head = Artifacts.of_kubernetes(
        [
            obj(
                "S",
                "creds",
                password="hunter3",
                apiToken="t0k",
                tls={"ca-key.pem": PRIVATE_KEY},
                note=f"inline {PRIVATE_KEY}",
                plain="visible too",
            )
        ]
    )
    [change] = diff_artifacts(base, head)
    assert "hunter" not in change.diff and "t0k" not in change.diff
    assert "PRIVATE KEY-----\n" not in change.diff and "ZmFrZS1r" not in change.diff
    assert re.search(rf"\n-  password: '?{re.escape(MASKED)}'?\n", change.diff)
    assert re.search(rf"\n\+  password: '?{re.escape(MASKED_CHANGED)}'?\n", change.diff)
    # an unchanged secret is masked and has no diff line
    assert re.search(rf"\n   apiToken: '?{re.escape(MASKED)}'?\n", change.diff)
    assert "+  plain: visible too\n" in change.diff


def test_mask_text_cuts_truncated_pem_blocks() -> None:
    assert "ZmFrZS1r" not in mask_text("x " + PRIVATE_KEY[:90])
    assert mask_text("-----BEGIN CERTIFICATE-----\nabc") == "-----BEGIN CERTIFICATE-----\nabc"


def _doc(resources: list[dict[str, Any]], added: int = 0) -> dict[str, Any]:
    edge = {
        "source": "bookinfo/a",
        "sourceKind": "service",
        "server": "bookinfo/b",
        "operation": "GET /x/*",
        "action": "allow",
        "mode": "enforce",
        "text": "a → b GET /x/*",
    }
    return {
        "version": 1,
        "now": "2026-11-25T12:00:00Z",
        "ok": True,
        "changed": True,
        "base": {"ref": "A", "commit": "a" * 40, "compiles": True, "findings": []},
        "head": {"ref": "B", "commit": "b" * 40, "compiles": True, "findings": []},
        "summary": {
            "created": len(resources),
            "changed": 0,
            "deleted": 0,
            "allowedAdded": added,
            "allowedRemoved": 0,
            "effectiveAdded": 0,
            "effectiveRemoved": 0,
            "trafficChanges": 0,
            "resilienceChanges": 0,
            "meshChanges": 0,
            "trustChanges": 0,
            "riskFlags": 0,
        },
        "riskFlags": [],
        "refusals": [],
        "notes": [],
        "meaning": {
            "qualified": False,
            "allowed": {"added": [edge] * added, "removed": []},
            "effective": {"added": [], "removed": []},
            "traffic": [],
            "resilience": [],
            "mesh": [],
            "trust": [],
        },
        "resources": resources,
    }


def test_big_plans_split_into_marked_parts_below_the_limit() -> None:
    diff = "--- /dev/null\n+++ head/x\n" + "".join(f"+  line{i}: {'v' * 60}\n" for i in range(150))
    resources = [{"action": "created", "id": f"K.g/ns/obj{i}", "diff": diff} for i in range(8)]
    parts = render_markdown(_doc(resources, added=3))
    assert len(parts) > 1
    for index, part in enumerate(parts, start=1):
        assert part.startswith(f"<!-- meshc-plan part {index}/{len(parts)} -->\n")
        assert len(part) < GITHUB_COMMENT_LIMIT
        assert part.count("<details") == part.count("</details>")
        assert part.count("```") % 2 == 0
    whole = "".join(parts)
    assert all(f"K.g/ns/obj{i}</code>" in whole for i in range(8))
    assert whole.count("+  line149: ") == 8
    assert whole.index("**Plan:") < whole.index("```mermaid")


def test_one_oversized_diff_is_cut_and_closed() -> None:
    diff = "".join(f"+ {'y' * 90}\n" for i in range(5000))
    [part] = render_markdown(_doc([{"action": "created", "id": "K.g/ns/big", "diff": diff}]))
    assert "diff cut; run `meshc plan` locally" in part
    assert part.count("```") % 2 == 0 and part.count("<details") == part.count("</details>")


def test_pack_truncates_a_block_larger_than_a_part() -> None:
    block = (
        "<details><summary>x</summary>\n\n```diff\n" + "+ z\n" * 50_000 + "```\n\n</details>\n\n"
    )
    [part] = pack([block], budget=60_000)
    assert len(part) < GITHUB_COMMENT_LIMIT and "cut to fit a GitHub comment" in part
    assert part.count("```") % 2 == 0 and part.count("<details") == part.count("</details>")


def test_artifact_key_identity_is_what_the_diff_compares() -> None:
    assert str(ArtifactKey.of_kubernetes(obj("A", "n"))) == "A.example.io/ns/n"


def test_keys_that_are_not_kubernetes_objects_are_diffed_and_clashes_named() -> None:
    """A per-proxy resource keeps its own key: nothing re-reads it as a Kubernetes object."""
    route = ArtifactKey("envoy.config.route.v3", "RouteConfiguration", "sidecar~10.0.0.1", "80")
    base = Artifacts.of_groups([[(route, {"virtual_hosts": []})]])
    head = Artifacts.of_groups([[(route, {"virtual_hosts": [{"name": "reviews"}]})]])
    [change] = diff_artifacts(base, head)
    assert (change.action, change.key) == ("changed", route)
    assert "base/RouteConfiguration.envoy.config.route.v3/sidecar~10.0.0.1/80" in change.diff
    with pytest.raises(ValueError, match="share the identity RouteConfiguration"):
        Artifacts.of_groups([[(route, {})], [(route, {"other": 1})]])


def test_a_huge_plan_posts_at_most_max_parts_comments() -> None:
    from compiler.plan.markdown import MAX_PARTS

    diff = "".join(f"+  line{i}: {'v' * 60}\n" for i in range(200))
    resources = [{"action": "created", "id": f"K.g/ns/obj{i}", "diff": diff} for i in range(20_000)]
    parts = render_markdown(_doc(resources))
    assert 1 < len(parts) <= MAX_PARTS
    whole = "".join(parts)
    assert "diffs left out: too many to post" in whole and "line0:" not in whole
    assert all(len(p) < GITHUB_COMMENT_LIMIT for p in parts)
    assert parts[-1].startswith(f"<!-- meshc-plan part {len(parts)}/{len(parts)} -->")
    assert "more section(s) left out" in parts[-1]


def test_many_risk_flags_are_capped_in_the_comment() -> None:
    doc = _doc([])
    doc["riskFlags"] = [
        {
            "code": "access-widened",
            "subject": f"ns/s{i}",
            "message": f"new allowed access: a → s{i} *",
        }
        for i in range(120)
    ]
    [part] = render_markdown(doc)
    assert "Risk flags (120)" in part
    assert part.count("`access-widened`") == 50
    assert "… and 70 more (`meshc plan --format json` lists them all)" in part
