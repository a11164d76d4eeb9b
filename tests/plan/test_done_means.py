"""Issue 3's 'done means': a commit that widens reviews' access and shifts its traffic
shows exactly those edges, shares and risk flags in text, json and markdown."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.plan.gitrepo import bookinfo_repo, commit_all, widen_reviews

NOW = "2026-11-25T12:00:00Z"


@pytest.fixture(scope="module")
def widened(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root, commit_a = bookinfo_repo(tmp_path_factory.mktemp("done") / "repo")
    widen_reviews(root)
    commit_b = commit_all(root, "B: widen reviews, shift traffic")
    return root, commit_a, commit_b


def run_plan(root: Path, base: str, head: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """The installed `meshc plan` of `root`'s policies directory, base → head, at NOW."""
    return run_cli(
        "meshc",
        "plan",
        "--base",
        base,
        "--head",
        head,
        "--repo",
        str(root),
        "--path",
        "policies",
        *flags,
        "--now",
        NOW,
        "--detailed-exitcode",
    )


def plan(repo: tuple[Path, str, str], fmt: str) -> tuple[int, str, str]:
    root, commit_a, commit_b = repo
    result = run_plan(root, commit_a, commit_b, "--format", fmt)
    return result.returncode, result.stdout, result.stderr


def test_json_has_exactly_the_new_edge_shares_and_flag(widened: tuple[Path, str, str]) -> None:
    code, out, err = plan(widened, "json")
    assert code == 1, err
    doc = json.loads(out)
    assert doc["version"] == 1 and doc["ok"] is True and doc["changed"] is True
    assert doc["base"]["commit"] == widened[1] and doc["head"]["commit"] == widened[2]
    allowed = doc["meaning"]["allowed"]
    assert [e["text"] for e in allowed["added"]] == ["ratings → reviews GET /reviews/*"]
    assert allowed["added"][0]["source"] == "bookinfo/ratings"
    assert allowed["removed"] == []
    # ratings does not declare `calls: [reviews]`, so the effective graph is unchanged.
    assert doc["meaning"]["effective"] == {"added": [], "removed": []}
    [traffic] = doc["meaning"]["traffic"]
    assert traffic["text"] == "reviews: v1 90%, v3 10% → v1 50%, v3 50%"
    assert traffic["before"]["shares"] == {"v1": 90, "v3": 10}
    assert traffic["after"]["shares"] == {"v1": 50, "v3": 50}
    assert [(f["code"], f["subject"]) for f in doc["riskFlags"]] == [
        ("access-widened", "bookinfo/reviews"),
        ("traffic-shifted", "bookinfo/reviews"),  # v3 moves 40 points in one change
    ]
    assert doc["meaning"]["resilience"] == doc["meaning"]["mesh"] == doc["meaning"]["trust"] == []
    changed = {(r["action"], r["kind"], r["name"]) for r in doc["resources"]}
    assert ("changed", "VirtualService", "reviews") in changed
    assert all(action == "changed" for action, _, _ in changed)
    virtual_service = next(r for r in doc["resources"] if r["kind"] == "VirtualService")
    assert "-      weight: 90\n" in virtual_service["diff"]
    assert "+      weight: 50\n" in virtual_service["diff"]
    policy_diffs = "".join(
        r["diff"] for r in doc["resources"] if r["kind"] == "AuthorizationPolicy"
    )
    assert "+        - cluster.local/ns/bookinfo/sa/bookinfo-ratings" in policy_diffs


def test_text_shows_the_same_edges_shares_and_flag(widened: tuple[Path, str, str]) -> None:
    code, out, err = plan(widened, "text")
    assert code == 1, err
    assert (
        "Risk flags (2):\n"
        "  ! access-widened: bookinfo/ratings → bookinfo/reviews: GET /reviews/x (port 9080) "
        "newly allowed\n"
        "  ! traffic-shifted: reviews: v3 10% → 50% in one change (more than 25 points at once)"
        in out
    )
    assert "Access (allowed graph):\n  + ratings → reviews GET /reviews/*\n\n" in out
    assert "Traffic:\n  ~ reviews: v1 90%, v3 10% → v1 50%, v3 50%\n" in out
    assert "Access (effective graph" not in out
    assert "~ VirtualService.networking.istio.io/bookinfo/reviews (changed)" in out
    assert "Traceback" not in err


def test_markdown_is_a_pr_comment_with_the_graph(widened: tuple[Path, str, str]) -> None:
    code, out, err = plan(widened, "markdown")
    assert code == 1, err
    assert out.startswith("<!-- meshc-plan part 1/1 -->\n## meshc plan: ")
    summary_at = out.index("**Plan:")
    assert summary_at < out.index("Risk flags (2)") < out.index("```mermaid")
    assert (
        "> - `access-widened` bookinfo/ratings → bookinfo/reviews: GET /reviews/x (port 9080) "
        "newly allowed" in out
    )
    mermaid = out.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert '["bookinfo/ratings"]' in mermaid and '["bookinfo/reviews"]' in mermaid
    assert '==>|"+ GET /reviews/*"|' in mermaid
    assert '-->|"GET /ratings/*"|' in mermaid  # unchanged context edge between the two
    assert "+ ratings → reviews GET /reviews/*" in out
    assert "- reviews: v1 90%, v3 10% → v1 50%, v3 50%" in out
    assert out.count("<details") == out.count("</details>")
    assert len(out) < 65_536


def test_same_revision_means_no_changes(widened: tuple[Path, str, str]) -> None:
    root, _, commit_b = widened
    result = run_plan(root, commit_b, commit_b)
    assert result.returncode == 0, result.stderr
    assert "Plan: no changes" in result.stdout
